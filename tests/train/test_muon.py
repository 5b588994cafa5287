"""MuonAdam against simple per-parameter references, and its place in a training run."""

import math

import pytest
import torch
from torch import nn

from ponita.train import MuonAdam, load_config, muon_parameters
from ponita.train._muon import NS_COEFFICIENTS, newton_schulz


def newton_schulz_reference(matrix: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """One matrix, the iteration written out as in Jordan et al."""
    a, b, c = NS_COEFFICIENTS
    x = matrix.T if matrix.shape[0] > matrix.shape[1] else matrix
    x = x / x.norm()
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if matrix.shape[0] > matrix.shape[1] else x


@pytest.mark.parametrize("shape", [(6, 20), (20, 6), (12, 12)])
def test_batched_newton_schulz_matches_the_iteration_on_each_matrix(shape) -> None:
    matrices = torch.randn(3, *shape, dtype=torch.float64)
    batched = newton_schulz(matrices, dtype=torch.float64)
    for matrix, result in zip(matrices, batched):
        torch.testing.assert_close(result, newton_schulz_reference(matrix), rtol=1e-10, atol=1e-12)
    singular_values = torch.linalg.svdvals(batched)  # orthogonal up to Jordan et al.'s band
    assert singular_values.min() > 0.5 and singular_values.max() < 1.3


def muon_reference_step(weight, gradient, buffer, lr, momentum, decay) -> None:
    """torch.optim.Muon's update (Nesterov, RMS matched to AdamW) for one matrix, in place."""
    buffer.lerp_(gradient, 1 - momentum)
    update = newton_schulz_reference(gradient.lerp(buffer, momentum).double()).to(weight.dtype)
    weight.mul_(1 - lr * decay).add_(update, alpha=-lr * 0.2 * math.sqrt(max(weight.shape)))


def test_muon_groups_follow_the_reference_update_and_adam_groups_follow_adamw() -> None:
    torch.manual_seed(0)
    shapes = [(16, 16), (16, 16), (48, 16), (16, 48)]
    matrices = [nn.Parameter(torch.randn(shape)) for shape in shapes]
    vector = nn.Parameter(torch.randn(16))
    optimizer = MuonAdam([{"params": matrices, "muon": True}, {"params": [vector], "weight_decay": 0.0}],
                         lr=0.01, weight_decay=0.1, momentum=0.9, decoupled=True)
    references = [matrix.detach().clone() for matrix in matrices]
    buffers = [torch.zeros_like(matrix) for matrix in matrices]
    reference_vector = nn.Parameter(vector.detach().clone())
    adamw = torch.optim.AdamW([reference_vector], lr=0.01, weight_decay=0.0)
    for _ in range(3):
        gradients = [torch.randn(shape) for shape in shapes]
        vector_gradient = torch.randn(16)
        for matrix, gradient in zip(matrices, gradients):
            matrix.grad = gradient.clone()
        vector.grad, reference_vector.grad = vector_gradient.clone(), vector_gradient.clone()
        optimizer.step()
        adamw.step()
        for reference, gradient, buffer in zip(references, gradients, buffers):
            muon_reference_step(reference, gradient, buffer, lr=0.01, momentum=0.9, decay=0.1)
    for matrix, reference in zip(matrices, references):
        torch.testing.assert_close(matrix.detach(), reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(vector.detach(), reference_vector.detach())


def test_state_dict_round_trip_continues_exactly() -> None:
    def make():
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(3, 32), nn.GELU(), nn.Linear(32, 32), nn.GELU(), nn.Linear(32, 1))
        muon, adam = muon_parameters(model)
        return model, MuonAdam([{"params": muon, "muon": True}, {"params": adam}], lr=1e-2)

    def steps(model, optimizer, seeds):
        for seed in seeds:
            x = torch.randn(8, 3, generator=torch.Generator().manual_seed(seed))
            optimizer.zero_grad()
            model(x).square().mean().backward()
            optimizer.step()

    model_a, optimizer_a = make()
    steps(model_a, optimizer_a, range(4))
    model_b, optimizer_b = make()
    steps(model_b, optimizer_b, range(2))
    state = optimizer_b.state_dict()
    model_c, optimizer_c = make()
    model_c.load_state_dict(model_b.state_dict())
    optimizer_c.load_state_dict(state)
    steps(model_c, optimizer_c, range(2, 4))
    for a, c in zip(model_a.parameters(), model_c.parameters()):
        torch.testing.assert_close(a, c, rtol=0, atol=0)


def test_thin_input_and_output_matrices_go_to_adam() -> None:
    model = nn.Sequential(nn.Linear(5, 64), nn.Linear(64, 64), nn.Linear(64, 3))
    muon, adam = muon_parameters(model)
    assert [tuple(p.shape) for p in muon] == [(64, 64)]
    assert sorted(tuple(p.shape) for p in adam) == [(3,), (3, 64), (64,), (64,), (64, 5)]


def test_muon_rejects_groups_of_vectors() -> None:
    with pytest.raises(ValueError, match="Muon groups may only hold 2-D weight matrices"):
        MuonAdam([{"params": [nn.Parameter(torch.zeros(3))], "muon": True}])


def test_config_offers_muon() -> None:
    assert load_config("md17", "quick", overrides=["optimizer=muon"]).optimizer == "muon"
