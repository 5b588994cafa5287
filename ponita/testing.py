r"""Reusable checks for SE(n)-equivariant networks: symmetry, forces and checkpoints.

Every network with the :class:`ponita.Ponita` call convention ``(scalar, vector) = model(data)``
can be checked with these functions; the test suite of each model only supplies a tiny config.

* :func:`assert_equivariant`: rotations, translations and node permutations.
* :func:`assert_forces_match_finite_differences`: autograd forces against central differences.
* :func:`assert_reload_identical`: a saved and reloaded network gives bit-identical outputs.

The functions raise :class:`AssertionError` with a table of the errors, and hide their own frames
from pytest tracebacks.
"""

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ponita.geometry import random_rotation

logger = logging.getLogger(__name__)

DEFAULT_ATOL = {torch.float64: 1e-9, torch.float32: 1e-4}
"""Default tolerance of :func:`assert_equivariant` per floating dtype (float16/bfloat16: 1e-2)."""


def assert_equivariant(
    model: nn.Module,
    data: Data,
    rotation: Tensor | None = None,
    translation: bool = True,
    permutation: bool = True,
    atol: float | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Checks that ``model`` is SE(n)-equivariant and permutation-equivariant on ``data``.

    Transforms the input by :math:`p \mapsto R p + t` (positions), :math:`v \mapsto R v` (``vec``,
    ``ori``), :math:`R_i \mapsto R R_i` (``rot``)
    and a random permutation of the nodes within each graph (``x``, ``vec``, ``pos``,
    ``kernel_condition``; ``batch`` stays sorted; ``edge_index`` is relabelled), and checks

    .. math::
        s(g \cdot \mathrm{data}) = P\, s(\mathrm{data}), \qquad
        v(g \cdot \mathrm{data}) = P\, v(\mathrm{data}) R^\top

    where :math:`P` permutes node-level outputs and is the identity for graph-level outputs
    (``model.config.task_level``, or node level when the output has one row per node).

    Args:
        model: a network called as ``(scalar, vector) = model(data)``, with ``scalar`` ``[N or G, S]``
            and ``vector`` ``[N or G, V, n]``.
        data: the input; it is not modified.
        rotation: the rotation :math:`R` (``[n, n]``); ``None`` draws one with :func:`random_rotation`.
            Fibre bundles over a finite grid are exactly equivariant only to rotations that map the
            grid onto itself, so pass one of those.
        translation: also translate by a random :math:`t`.
        permutation: also permute the nodes.
        atol: largest allowed absolute error (``None``: :data:`DEFAULT_ATOL` for the model's dtype).

    Returns:
        The maximum absolute errors of the scalar and vector outputs.

    Raises:
        AssertionError: if an error exceeds ``atol``; the message holds the error table.

    Example:
        >>> import ponita
        >>> model = ponita.Ponita(input_dim=1, hidden_dim=8, num_layers=1, space="R3").double()
        >>> data = Data(pos=torch.randn(4, 3, dtype=torch.float64), x=torch.ones(4, 1, dtype=torch.float64))
        >>> _ = assert_equivariant(model, data)
    """
    __tracebackhide__ = True
    pos = data.pos
    num_nodes, dim = pos.shape
    dtype = _model_dtype(model, pos.dtype)
    if rotation is None:
        rotation = random_rotation(dim, dtype=torch.float64)
    rotation = rotation.to(device=pos.device, dtype=pos.dtype)  # [n, n]
    shift = torch.randn(dim, dtype=pos.dtype, device=pos.device) if translation else pos.new_zeros(dim)  # [n]
    batch = data.get("batch") if hasattr(data, "get") else getattr(data, "batch", None)
    if permutation:
        graph_id = batch if batch is not None else torch.zeros(num_nodes, dtype=torch.long, device=pos.device)
        key = graph_id.to(torch.float64) + torch.rand(num_nodes, dtype=torch.float64, device=pos.device)
        perm = torch.argsort(key)  # [N]: new node k is old node perm[k], within the same graph
    else:
        perm = torch.arange(num_nodes, device=pos.device)

    transformed = data.clone()
    transformed.pos = (pos @ rotation.T + shift)[perm]  # [N, n]
    for name in ("x", "kernel_condition", "batch"):
        value = getattr(data, name, None)
        if value is not None:
            setattr(transformed, name, value[perm])
    for name in ("vec", "ori"):
        value = getattr(data, name, None)
        if value is not None:
            setattr(transformed, name, (value @ rotation.T.to(value.dtype))[perm])  # [N, (V,) n]
    rot = getattr(data, "rot", None)
    if rot is not None:
        transformed.rot = (rotation.to(rot.dtype) @ rot)[perm]  # [N, n, n]
    edge_index = getattr(data, "edge_index", None)
    if edge_index is not None:
        inverse = torch.argsort(perm)  # [N]: old node → new node
        transformed.edge_index = inverse[edge_index]  # [2, E]

    scalar, vector = model(data)
    scalar_t, vector_t = model(transformed)
    node_level = _is_node_level(model, scalar, num_nodes)
    expected_scalar = scalar[perm] if node_level else scalar
    expected_vector = vector @ rotation.T.to(vector.dtype)  # [N or G, V, n]
    expected_vector = expected_vector[perm] if node_level else expected_vector

    tolerance = atol if atol is not None else DEFAULT_ATOL.get(dtype, 1e-2)
    errors = {
        "scalar": _max_error(scalar_t, expected_scalar),
        "vector": _max_error(vector_t, expected_vector),
    }
    table = _error_table(errors, tolerance, rotation, translation, permutation)
    logger.info("Equivariance errors:\n%s", table)
    if any(error > tolerance or error != error for error in errors.values()):
        raise AssertionError(f"Model is not equivariant (atol={tolerance:.1e}):\n{table}")
    return torch.tensor(errors["scalar"]), torch.tensor(errors["vector"])


def assert_forces_match_finite_differences(
    energy_fn: Callable[[Tensor], Tensor], pos: Tensor, eps: float = 1e-6, atol: float = 1e-6
) -> Tensor:
    r"""Checks autograd forces :math:`F = -\nabla_p E` against central finite differences.

    .. math::
        F_{k,d} \approx -\frac{E(p + \epsilon e_{k,d}) - E(p - \epsilon e_{k,d})}{2\epsilon}

    Both are computed in float64.

    Args:
        energy_fn: maps positions ``[N, n]`` to a scalar energy (a tensor with one element).
        pos: positions at which to compare.
        eps: finite-difference step :math:`\epsilon`.
        atol: largest allowed absolute difference.

    Returns:
        The autograd forces ``[N, n]``.

    Raises:
        AssertionError: if autograd and finite-difference forces differ by more than ``atol``.

    Example:
        >>> energy = lambda p: 0.5 * (p**2).sum()
        >>> forces = assert_forces_match_finite_differences(energy, torch.ones(2, 3, dtype=torch.float64))
        >>> forces[0]
        tensor([-1., -1., -1.], dtype=torch.float64)
    """
    __tracebackhide__ = True
    pos = pos.detach().to(torch.float64).requires_grad_(True)
    energy = energy_fn(pos)
    if energy.numel() != 1:
        raise ValueError(f"energy_fn must return one energy, got shape {list(energy.shape)}; sum it first.")
    (gradient,) = torch.autograd.grad(energy.sum(), pos)
    forces = -gradient  # [N, n]
    numerical = torch.zeros_like(forces)  # [N, n]
    with torch.no_grad():
        for index in range(pos.numel()):
            step = torch.zeros_like(pos).view(-1)
            step[index] = eps
            step = step.view_as(pos)
            plus = energy_fn(pos + step).sum()
            minus = energy_fn(pos - step).sum()
            numerical.view(-1)[index] = -(plus - minus) / (2.0 * eps)
    error = float((forces - numerical).abs().max())
    if not error <= atol:
        raise AssertionError(
            f"Autograd forces differ from finite differences by {error:.3e} > atol={atol:.1e} (eps={eps:.1e}).\n"
            f"autograd:\n{forces}\nfinite differences:\n{numerical}"
        )
    return forces.detach()


def assert_reload_identical(model: nn.Module, data: Data, tmp_path: str | Path) -> nn.Module:
    """Saves ``{"config", "state_dict"}``, rebuilds the model from it and compares outputs bit for bit.

    Works for :class:`ponita.Ponita` and every zoo model: anything with a dataclass ``config`` and a
    ``from_config`` class method (``type(model).from_config(config)`` builds the architecture). The
    checkpoint is ``{"config": dataclasses.asdict(model.config), "state_dict": model.state_dict()}``
    written with :func:`torch.save` and read with ``weights_only=True``; the new model is built from the
    config, cast to float64 if the saved weights are, and loaded with ``load_state_dict(strict=True)``.

    Args:
        model: the model to check.
        data: the input to compare on.
        tmp_path: a directory to write ``checkpoint.pt`` into.

    Returns:
        The reloaded model.

    Raises:
        AssertionError: if an output of the reloaded model differs in any bit.

    Example:
        >>> import ponita, tempfile
        >>> model = ponita.Ponita(input_dim=1, hidden_dim=8, num_layers=1, num_ori=6)
        >>> data = Data(pos=torch.randn(4, 3), x=torch.ones(4, 1))
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     reloaded = assert_reload_identical(model, data, directory)
    """
    __tracebackhide__ = True
    path = Path(tmp_path) / "checkpoint.pt"
    torch.save({"config": dataclasses.asdict(model.config), "state_dict": model.state_dict()}, path)
    checkpoint = torch.load(path, weights_only=True)
    reloaded = type(model).from_config(type(model.config)(**checkpoint["config"]))
    if _model_dtype(model, torch.float32) == torch.float64:
        reloaded.double()
    reloaded.load_state_dict(checkpoint["state_dict"], strict=True)
    reloaded.train(model.training)
    expected, actual = model(data), reloaded(data)
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = actual if isinstance(actual, tuple) else (actual,)
    for index, (a, b) in enumerate(zip(actual, expected)):
        if a.shape != b.shape or a.dtype != b.dtype or not torch.equal(a, b):
            difference = float((a - b).detach().abs().max()) if a.shape == b.shape else float("nan")
            raise AssertionError(
                f"Reloaded output {index} differs from the original (max difference {difference:.3e}, "
                f"shapes {list(a.shape)} vs {list(b.shape)}, dtypes {a.dtype} vs {b.dtype})."
            )
    return reloaded


def _model_dtype(model: nn.Module, default: torch.dtype) -> torch.dtype:
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return default


def _is_node_level(model: nn.Module, scalar: Tensor, num_nodes: int) -> bool:
    config = getattr(model, "config", None)
    task_level = getattr(config, "task_level", None)
    if task_level is not None:
        return task_level == "node"
    return scalar.shape[0] == num_nodes


def _max_error(actual: Tensor, expected: Tensor) -> float:
    if actual.shape != expected.shape:
        raise AssertionError(
            f"Output shape changed under the transformation: {list(actual.shape)} vs {list(expected.shape)}."
        )
    if actual.numel() == 0:
        return 0.0
    return float((actual - expected).detach().abs().max())


def _error_table(errors: dict[str, float], atol: float, rotation: Tensor, translation: bool, permutation: bool) -> str:
    transform = f"rotation (det {float(torch.det(rotation.double())):+.3f})"
    transform += " + translation" if translation else ""
    transform += " + permutation" if permutation else ""
    lines = [f"transformation: {transform}", f"{'output':<8} {'max |error|':>12}  {'ok':>3}"]
    for name, error in errors.items():
        lines.append(f"{name:<8} {error:>12.3e}  {'yes' if error <= atol else 'NO':>3}")
    return "\n".join(lines)
