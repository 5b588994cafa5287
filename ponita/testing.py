r"""Reusable checks for SE(n)-equivariant networks: symmetry, forces and checkpoints.

The checks work for :class:`ponita.Ponita` and for every zoo model (anything with a dataclass ``config``
and a ``from_config`` class method, see :class:`ponita.models.ZooModel`); the test suite of each model
only supplies a tiny config and, where its fields or outputs differ from ``Ponita``'s, says how they
transform.

* :func:`assert_equivariant`: rotations, translations and node permutations.
* :func:`assert_forces_match_finite_differences`: autograd forces against central differences.
* :func:`assert_reload_identical`: a saved and reloaded model gives bit-identical outputs.
* :class:`HostSyncCounter`: counts the operations that make the host wait for a GPU.

The functions raise :class:`AssertionError` with a table of the errors, and hide their own frames
from pytest tracebacks.
"""

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ponita._host_syncs import HostSyncCounter
from ponita.geometry import random_rotation

__all__ = [
    "DEFAULT_ATOL",
    "HostSyncCounter",
    "assert_equivariant",
    "assert_forces_match_finite_differences",
    "assert_reload_identical",
]

logger = logging.getLogger(__name__)

DEFAULT_ATOL = {torch.float64: 1e-9, torch.float32: 1e-4}
"""Default tolerance of :func:`assert_equivariant` per floating dtype (float16/bfloat16: 1e-2)."""

# What a model returns: one tensor or a tuple of them.
_Outputs = Tensor | tuple[Tensor, ...]
# (output, rotation [n, n], shift [n]) -> the output expected for the transformed input (before the permutation).
_OutputTransform = Callable[[Tensor, Tensor, Tensor], Tensor]

# How the fields of a ponita.Ponita input transform under p -> R p + t (other fields are invariant).
_PONITA_INPUTS = {"pos": "position", "vec": "vector", "ori": "vector", "rot": "frame"}
# How the outputs of ponita.Ponita, (scalar, vector), transform.
_PONITA_OUTPUTS = ("invariant", "vector")
_INPUT_KINDS = ("position", "vector", "frame", "invariant")
_OUTPUT_KINDS = ("position", "vector", "invariant")


def assert_equivariant(
    model: nn.Module,
    data: Data,
    rotation: Tensor | None = None,
    translation: bool = True,
    permutation: bool = True,
    atol: float | None = None,
    *,
    inputs: Mapping[str, str] | None = None,
    outputs: Sequence[str | _OutputTransform] | None = None,
    call: Callable[[nn.Module, Data], _Outputs] | None = None,
) -> tuple[Tensor, ...]:
    r"""Checks that ``model`` is SE(n)-equivariant and permutation-equivariant on ``data``.

    Transforms the input by :math:`g = (R, t)` and a random permutation :math:`P` of the nodes within
    each graph, field by field as ``inputs`` says:

    * ``"position"``: :math:`p \mapsto R p + t` (``pos``);
    * ``"vector"``: :math:`v \mapsto R v` along the last dimension (``vec`` ``[N, V, n]``, ``ori``);
    * ``"frame"``: rotation matrices :math:`R_i \mapsto R R_i` (``rot`` ``[N, n, n]``);
    * ``"invariant"``, and every field not named: unchanged.

    Every tensor field with one row per node (first dimension :math:`N`, the rows of the first
    position field), named or not, is then permuted; ``batch`` stays sorted, ``edge_index`` is
    relabelled, other ``edge_*`` fields and graph-level fields (``energy`` ``[G]``) are left as they are.
    The check is, for each output :math:`y_k` of the model with its transformation :math:`g \cdot y_k`,

    .. math::
        y_k(g \cdot \mathrm{data}) = P\, \big(g \cdot y_k(\mathrm{data})\big)

    where :math:`P` permutes the outputs with one row per node and is the identity for the others
    (graph-level outputs such as an energy ``[G]``). Since the permutation stays within graphs, it is the
    identity whenever :math:`N = G`, so the row count decides without ambiguity.

    Args:
        model: the model; its parameters' dtype (or, without parameters, the positions') sets the
            default tolerance.
        data: the input; it is not modified.
        rotation: the rotation :math:`R` (``[n, n]``); ``None`` draws one with :func:`random_rotation`.
            Fibre bundles over a finite grid are exactly equivariant only to rotations that map the
            grid onto itself, so pass one of those.
        translation: also translate by a random :math:`t`.
        permutation: also permute the nodes.
        atol: largest allowed absolute error (``None``: :data:`DEFAULT_ATOL` for the model's dtype).
        inputs: field name → ``"position"``, ``"vector"``, ``"frame"`` or ``"invariant"``; fields that
            ``data`` lacks are skipped, and at least one position field must be present. ``None``:
            :class:`ponita.Ponita`'s fields, ``{"pos": "position", "vec": "vector", "ori": "vector",
            "rot": "frame"}``. An N-body model passes e.g. ``{"pos": "position", "vel": "vector"}``.
        outputs: how each output transforms, one entry per output (a model that returns one tensor
            has one output): ``"invariant"`` (:math:`y \mapsto y`), ``"vector"`` (:math:`v \mapsto v
            R^\top`, last dimension :math:`n`), ``"position"`` (:math:`p \mapsto p R^\top + t`), or a
            function ``(output, rotation, shift) -> transformed output`` for anything else (e.g. a
            rank-2 tensor, :math:`T \mapsto R T R^\top`). ``None``: :class:`ponita.Ponita`'s
            ``(scalar, vector)``, that is ``("invariant", "vector")``; a potential's ``(energy,
            forces)`` transform the same way.
        call: how to run the model, ``call(model, data) -> output or tuple of outputs`` (``None``:
            ``model(data)``), e.g. ``lambda m, d: m.predict_noise(d.pos, d.h, d.t, d.batch)``.

    Returns:
        The maximum absolute error of each output, in the order of ``outputs``.

    Raises:
        AssertionError: if an error exceeds ``atol`` or an output changes shape; the message holds
            the error table.
        ValueError: if ``inputs`` or ``outputs`` name an unknown transformation, ``data`` has no
            position field, or the model returns another number of outputs than ``outputs`` names.

    Example:
        >>> import ponita
        >>> model = ponita.Ponita(input_dim=1, hidden_dim=8, num_layers=1, space="R3").double()
        >>> data = Data(pos=torch.randn(4, 3, dtype=torch.float64), x=torch.ones(4, 1, dtype=torch.float64))
        >>> _ = assert_equivariant(model, data)

        A model whose output is a position (here: every point moved by its velocity):

        >>> class Drift(nn.Module):
        ...     def forward(self, data):
        ...         return data.pos + data.vel
        >>> data = Data(pos=torch.randn(4, 3, dtype=torch.float64), vel=torch.randn(4, 3, dtype=torch.float64))
        >>> fields = {"pos": "position", "vel": "vector"}
        >>> errors = assert_equivariant(Drift(), data, inputs=fields, outputs=("position",))
        >>> len(errors)
        1
    """
    __tracebackhide__ = True
    inputs = dict(_PONITA_INPUTS if inputs is None else inputs)
    outputs = tuple(_PONITA_OUTPUTS if outputs is None else outputs)
    call = _call_model if call is None else call
    _check_kinds(inputs, outputs)
    positions = [name for name, kind in inputs.items() if kind == "position" and getattr(data, name, None) is not None]
    if not positions:
        raise ValueError(
            f"data has no position field among {sorted(inputs)}; name one in inputs, e.g. inputs={{'pos': 'position'}}."
        )
    pos = getattr(data, positions[0])
    num_nodes, dim = pos.shape
    dtype = _model_dtype(model, pos.dtype)
    if rotation is None:
        rotation = random_rotation(dim, dtype=torch.float64)
    rotation = rotation.to(device=pos.device, dtype=pos.dtype)  # [n, n]
    shift = torch.randn(dim, dtype=pos.dtype, device=pos.device) if translation else pos.new_zeros(dim)  # [n]
    batch = getattr(data, "batch", None)
    if permutation:
        graph_id = batch if batch is not None else torch.zeros(num_nodes, dtype=torch.long, device=pos.device)
        key = graph_id.to(torch.float64) + torch.rand(num_nodes, dtype=torch.float64, device=pos.device)
        perm = torch.argsort(key)  # [N]: new node k is old node perm[k], within the same graph
    else:
        perm = torch.arange(num_nodes, device=pos.device)

    transformed = data.clone()
    for name, value in data.items():
        if not isinstance(value, Tensor):
            continue
        kind = inputs.get(name, "invariant")
        value = _transform(value, kind, rotation, shift)
        if name == "edge_index":
            value = torch.argsort(perm)[value]  # [2, E]: old node → new node
        elif _is_node_level(name, value, num_nodes):
            value = value[perm]
        setattr(transformed, name, value)

    results = _as_tuple(call(model, data))
    results_t = _as_tuple(call(model, transformed))
    if len(results) != len(outputs):
        raise ValueError(
            f"The model returned {len(results)} output(s), but outputs describes {len(outputs)} "
            f"({', '.join(map(_kind_name, outputs))}); pass one transformation per output."
        )
    errors = {}
    for index, (kind, result, result_t) in enumerate(zip(outputs, results, results_t)):
        expected = kind(result, rotation, shift) if callable(kind) else _transform(result, kind, rotation, shift)
        if _is_node_level("", expected, num_nodes):
            expected = expected[perm]
        errors[f"{index}: {_kind_name(kind)}"] = _max_error(result_t, expected)

    tolerance = atol if atol is not None else DEFAULT_ATOL.get(dtype, 1e-2)
    table = _error_table(errors, tolerance, rotation, translation, permutation)
    logger.info("Equivariance errors:\n%s", table)
    if any(error > tolerance or error != error for error in errors.values()):
        raise AssertionError(f"Model is not equivariant (atol={tolerance:.1e}):\n{table}")
    return tuple(torch.tensor(error) for error in errors.values())


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


def assert_reload_identical(
    model: nn.Module,
    data: Data,
    tmp_path: str | Path,
    *,
    call: Callable[[nn.Module, Data], _Outputs] | None = None,
) -> nn.Module:
    """Saves ``{"config", "state_dict"}``, rebuilds the model from it and compares outputs bit for bit.

    Works for :class:`ponita.Ponita` and every zoo model: anything with a dataclass ``config`` and a
    ``from_config`` class method (``type(model).from_config(config)`` builds the architecture). The
    checkpoint is ``{"config": dataclasses.asdict(model.config), "state_dict": model.state_dict()}``
    written with :func:`torch.save` and read with ``weights_only=True``; the new model is built from the
    config, cast to float64 if the saved weights are, and loaded with ``load_state_dict(strict=True)``.
    Anything that defines the model's function outside the config and the state dict makes the check fail.

    Args:
        model: the model to check.
        data: the input to compare on.
        tmp_path: a directory to write ``checkpoint.pt`` into.
        call: how to run the model, ``call(model, data) -> output or tuple of outputs`` (``None``:
            ``model(data)``), for models whose work is not their ``forward``.

    Returns:
        The reloaded model.

    Raises:
        AssertionError: if an output of the reloaded model differs in any bit.
        TypeError: if ``model`` has no dataclass ``config`` or no ``from_config`` class method.

    Example:
        >>> import ponita, tempfile
        >>> model = ponita.Ponita(input_dim=1, hidden_dim=8, num_layers=1, num_ori=6)
        >>> data = Data(pos=torch.randn(4, 3), x=torch.ones(4, 1))
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     reloaded = assert_reload_identical(model, data, directory)
    """
    __tracebackhide__ = True
    config = getattr(model, "config", None)
    if not dataclasses.is_dataclass(config) or isinstance(config, type) or not callable(
        getattr(type(model), "from_config", None)
    ):
        raise TypeError(
            f"{type(model).__name__} needs a dataclass instance `config` and a `from_config` class method to be "
            "rebuilt (see ponita.models.ZooModel)."
        )
    call = _call_model if call is None else call
    path = Path(tmp_path) / "checkpoint.pt"
    torch.save({"config": dataclasses.asdict(config), "state_dict": model.state_dict()}, path)
    checkpoint = torch.load(path, weights_only=True)
    reloaded = type(model).from_config(type(config)(**checkpoint["config"]))
    if _model_dtype(model, torch.float32) == torch.float64:
        reloaded.double()
    reloaded.load_state_dict(checkpoint["state_dict"], strict=True)
    reloaded.train(model.training)
    expected, actual = _as_tuple(call(model, data)), _as_tuple(call(reloaded, data))
    for index, (a, b) in enumerate(zip(actual, expected)):
        if a.shape != b.shape or a.dtype != b.dtype or not torch.equal(a, b):
            difference = float((a - b).detach().abs().max()) if a.shape == b.shape else float("nan")
            raise AssertionError(
                f"Reloaded output {index} differs from the original (max difference {difference:.3e}, "
                f"shapes {list(a.shape)} vs {list(b.shape)}, dtypes {a.dtype} vs {b.dtype})."
            )
    return reloaded


def _call_model(model: nn.Module, data: Data) -> _Outputs:
    return model(data)


def _as_tuple(result: _Outputs) -> tuple[Tensor, ...]:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def _check_kinds(inputs: Mapping[str, str], outputs: Sequence[str | _OutputTransform]) -> None:
    for name, kind in inputs.items():
        if kind not in _INPUT_KINDS:
            raise ValueError(f"inputs[{name!r}] = {kind!r} is not a transformation; choose one of {_INPUT_KINDS}.")
    for index, kind in enumerate(outputs):
        if not callable(kind) and kind not in _OUTPUT_KINDS:
            raise ValueError(
                f"outputs[{index}] = {kind!r} is not a transformation; choose one of {_OUTPUT_KINDS} or pass a "
                "function (output, rotation, shift) -> transformed output."
            )


def _kind_name(kind: str | _OutputTransform) -> str:
    return kind if isinstance(kind, str) else getattr(kind, "__name__", "custom")


def _transform(value: Tensor, kind: str, rotation: Tensor, shift: Tensor) -> Tensor:
    """``value`` under :math:`p \\mapsto R p + t`, for a field or output of the given kind."""
    if kind == "invariant":
        return value
    rotation = rotation.to(value.dtype)
    if kind == "vector":
        return value @ rotation.T  # [..., n]
    if kind == "position":
        return value @ rotation.T + shift.to(value.dtype)  # [..., n]
    if kind == "frame":
        return rotation @ value  # [..., n, n]
    raise ValueError(f"Unknown transformation {kind!r}; choose one of {_INPUT_KINDS}.")


def _model_dtype(model: nn.Module, default: torch.dtype) -> torch.dtype:
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return default


def _is_node_level(name: str, value: Tensor, num_nodes: int) -> bool:
    """Whether a field or output has one row per node (``ptr`` and ``edge_*`` fields never do)."""
    if name == "ptr" or name.startswith("edge_"):
        return False
    return value.dim() > 0 and value.shape[0] == num_nodes


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
    width = max(len("output"), *map(len, errors))
    lines = [f"transformation: {transform}", f"{'output':<{width}} {'max |error|':>12}  {'ok':>3}"]
    for name, error in errors.items():
        lines.append(f"{name:<{width}} {error:>12.3e}  {'yes' if error <= atol else 'NO':>3}")
    return "\n".join(lines)
