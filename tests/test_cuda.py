"""Checks on a CUDA GPU: calibration and a force-training step of ``PonitaPotential``, compared with the
CPU, for each spatial-convolution backend that runs on CUDA; and a short ``fit`` on the GPU.

Every test is skipped without a CUDA device. The comparisons run in float64, where the GPU and the CPU
differ only by summation order and the round-off of elementary functions: measured on the CPU, the
``cpu`` and ``reference`` backends give gradients that differ by 1.3e-15 of each parameter's largest
gradient, so 1e-9 leaves six orders of magnitude. A float32 step is compared with the float64 CPU step
at 1e-4 (relative norm per parameter; measured 3.0e-6 between float32 and float64 on the CPU).
"""

import copy
import importlib.util
import math

import pytest
import torch
from torch_geometric.data import Batch

from ponita.datasets import fit_atomic_reference_energies, force_rms, load_rmd17
from ponita.models import PonitaPotential
from ponita.ops import use_backend
from ponita.train import MD17Task, energy_force_loss, fit, load_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DEVICE = "cuda"
# The backends that run on CUDA tensors: the plain-torch reference, and the fused Triton kernels.
BACKENDS = [
    "reference",
    pytest.param(
        "triton", marks=pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton not installed")
    ),
]
FLOAT64_RELATIVE = 1e-9
FLOAT32_RELATIVE = 1e-4


@pytest.fixture(scope="module")
def frames() -> list:
    return load_rmd17("ethanol", "train")[:4]


@pytest.fixture(autouse=True)
def _no_tf32(monkeypatch: pytest.MonkeyPatch) -> None:
    """float32 matrix products in full precision (TF32 would set the float32 tolerance instead)."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)


def _potential(frames: list) -> PonitaPotential:
    """A tiny uncalibrated potential in float64 with the statistics of ``frames`` (seeded weights)."""
    torch.manual_seed(0)
    energies = fit_atomic_reference_energies(frames)
    model = PonitaPotential(sorted(energies), energies, force_rms(frames), hidden_dim=8, num_layers=2, num_ori=4)
    return model.double()


def _training_step(model: PonitaPotential, batch: Batch, backend: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One Adam step on the energy-and-force loss (forces by autograd, so a double backward); returns the
    loss and the gradients."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with use_backend(backend):
        energy, forces = model(batch)
        loss = energy_force_loss(energy, forces, batch, model.scale, 500.0)
        loss.backward()
    gradients = {name: parameter.grad.detach().clone() for name, parameter in model.named_parameters()}
    optimizer.step()
    return loss.detach(), gradients


def _assert_close_to_largest_entry(actual: torch.Tensor, expected: torch.Tensor, relative: float, what: str) -> None:
    scale = float(expected.abs().max())
    torch.testing.assert_close(
        actual.cpu().to(expected.dtype), expected, rtol=relative, atol=relative * scale, msg=lambda m: f"{what}: {m}"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_calibration_on_cuda_matches_the_cpu(frames: list, backend: str) -> None:
    model = _potential(frames)
    batch = Batch.from_data_list(frames)
    on_gpu = copy.deepcopy(model).to(DEVICE)
    with use_backend("reference"):
        model.calibrate(batch)
    with use_backend(backend):
        on_gpu.calibrate(batch.clone().to(DEVICE))  # Batch.to moves in place
    assert on_gpu.calibrated
    expected, actual = model.state_dict(), on_gpu.state_dict()
    for name, value in expected.items():
        assert actual[name].device.type == DEVICE, name
        if value.is_floating_point():
            _assert_close_to_largest_entry(actual[name], value, FLOAT64_RELATIVE, name)
        else:
            assert torch.equal(actual[name].cpu(), value), name


def _calibrated_potential(frames: list) -> tuple:
    """The float64 test potential, calibrated on the CPU on a batch of ``frames``, and that batch."""
    model = _potential(frames)
    batch = Batch.from_data_list(frames)
    with use_backend("reference"):
        model.calibrate(batch)
    return model, batch


@pytest.mark.parametrize("backend", BACKENDS)
def test_force_training_step_on_cuda_matches_the_cpu(frames: list, backend: str) -> None:
    model, batch = _calibrated_potential(frames)
    on_gpu = copy.deepcopy(model).to(DEVICE)
    expected_loss, expected_gradients = _training_step(model, batch, "reference")
    loss, gradients = _training_step(on_gpu, batch.clone().to(DEVICE), backend)

    assert loss.device.type == DEVICE
    assert math.isclose(float(loss), float(expected_loss), rel_tol=FLOAT64_RELATIVE)
    for name, expected in expected_gradients.items():
        assert bool(expected.abs().max() > 0), f"{name} gets no gradient, so the comparison proves nothing"
        _assert_close_to_largest_entry(gradients[name], expected, FLOAT64_RELATIVE, name)
    for (name, parameter), reference in zip(on_gpu.named_parameters(), model.parameters()):
        assert parameter.device.type == DEVICE, name
        # Adam's first step moves every parameter by about lr, so the updated weights agree as well.
        _assert_close_to_largest_entry(parameter.detach(), reference.detach(), FLOAT64_RELATIVE, name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_force_training_step_on_cuda_is_close_to_float64_on_the_cpu(frames: list, backend: str) -> None:
    model, batch = _calibrated_potential(frames)
    on_gpu = copy.deepcopy(model).float().to(DEVICE)
    _, expected_gradients = _training_step(model, batch, "reference")
    loss, gradients = _training_step(on_gpu, batch.clone().to(DEVICE), backend)
    assert torch.isfinite(loss)
    for name, expected in expected_gradients.items():
        assert gradients[name].dtype == torch.float32, name
        error = float((gradients[name].cpu().double() - expected).norm() / expected.norm())
        assert error < FLOAT32_RELATIVE, f"{name}: relative error {error:.2e}"


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_md17_fit_on_cuda_calibrates_trains_and_exports(precision: str, tmp_path) -> None:
    train_frames = load_rmd17("ethanol", "train")[:10]
    config = load_config("md17", "quick", overrides=[
        "hidden_dim=8", "num_layers=1", "num_ori=4", "basis_dim=8", "batch_size=2", "max_epochs=1",
        "max_time_minutes=null", "lr_horizon=epochs", "accelerator=gpu", "devices=1", "compile_step=false",
        f"precision={precision}",
        f"output={tmp_path / 'run'}",
    ])
    result = fit(MD17Task(config), train_frames[:6], train_frames[6:8], train_frames[8:10])
    assert result.model is not None and result.model.is_file()
    state = torch.load(result.last_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    assert bool(state["model.network.calibrated"]) and bool(state["ema.network.calibrated"])
    assert all(torch.isfinite(value).all() for value in state.values() if value.is_floating_point())
    assert math.isfinite(result.test_metrics["forces_mae_meV_per_A"])


def test_auto_backend_on_cuda_fuses_only_above_the_memory_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    import ponita.ops._spatial_conv as spatial_conv_module
    from ponita.ops import receiver_csr, spatial_conv

    calls = []
    for name in ("triton", "reference"):
        spy = lambda *args, name=name: calls.append(name) or spatial_conv_module.spatial_conv_reference(*args)  # noqa: E731
        monkeypatch.setitem(spatial_conv_module._BACKENDS, name, spy)
    graph, _ = receiver_csr(torch.tensor([[0, 1, 2], [1, 2, 0]], device=DEVICE), 3)
    x = torch.randn(3, 2, 4, device=DEVICE)  # [N, O, C]
    basis = torch.randn(3, 2, 5, device=DEVICE)  # [E, O, B]
    weight = torch.randn(5, 4, device=DEVICE)  # [B, C]
    spatial_conv(x, basis, weight, graph)  # 96-byte messages: the reference path
    monkeypatch.setattr(spatial_conv_module, "FUSED_MIN_BYTES_CUDA", 0)
    spatial_conv(x, basis, weight, graph)
    assert calls == ["reference", "triton"]
