"""Input validation shared by the graph builders: positions, batch vectors, edge indices, numbers."""

import math

import torch
from torch import Tensor


def _is_integer_tensor(value: object) -> bool:
    return isinstance(value, Tensor) and not (
        value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool
    )


def check_pos(pos: Tensor) -> None:
    """Checks that ``pos`` is a finite floating point cloud in 2 or 3 dimensions.

    Args:
        pos: node positions.

    Raises:
        ValueError: if ``pos`` is not a floating tensor of shape ``[N, 2]`` or ``[N, 3]``, or holds
            NaN or infinite values.

    Shapes:
        pos ``[N, n]`` with ``n`` in ``{2, 3}``.
    """
    if not isinstance(pos, Tensor):
        raise ValueError(
            f"pos must be a torch.Tensor of shape [N, 2] or [N, 3], got {type(pos).__name__}."
        )
    if pos.dim() != 2 or pos.shape[1] not in (2, 3):
        raise ValueError(
            f"pos must have shape [N, 2] or [N, 3], got {list(pos.shape)}. "
            "Pass one row of coordinates per node."
        )
    if not pos.is_floating_point():
        raise ValueError(
            f"pos must be a floating point tensor, got {pos.dtype}. Convert it with pos.float()."
        )
    if not bool(torch.isfinite(pos).all()):
        raise ValueError(
            "pos holds NaN or infinite coordinates. Fix or remove those nodes before building the graph."
        )


def check_batch(batch: Tensor | None, num_nodes: int, device: torch.device | None) -> Tensor | None:
    """Checks a batch vector (graph id per node) and returns it as int64.

    Args:
        batch: graph id of each node, sorted non-decreasing as PyG produces it, or ``None`` for one graph.
        num_nodes: the number of nodes ``N`` the batch vector must cover.
        device: the device of the node positions, or ``None`` when there are none to match.

    Returns:
        ``batch`` as an int64 tensor, or ``None``.

    Raises:
        ValueError: if ``batch`` is not an integer tensor of shape ``[N]``, is on another device than the
            positions, holds a negative graph id, or is not sorted.

    Shapes:
        batch ``[N]`` → ``[N]``
    """
    if batch is None:
        return None
    if not _is_integer_tensor(batch):
        found = batch.dtype if isinstance(batch, Tensor) else type(batch).__name__
        raise ValueError(
            f"batch must be an integer tensor of graph ids, got {found}. Convert it with batch.long()."
        )
    if batch.dim() != 1 or batch.shape[0] != num_nodes:
        raise ValueError(
            f"batch must have shape [N] = [{num_nodes}] (one graph id per node), got {list(batch.shape)}."
        )
    if device is not None and batch.device != device:
        raise ValueError(f"batch is on {batch.device} but pos is on {device}. Move both to the same device.")
    batch = batch.long()  # [N]
    if num_nodes > 0 and int(batch.min()) < 0:
        raise ValueError(f"batch holds a negative graph id ({int(batch.min())}). Graph ids must be >= 0.")
    if num_nodes > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError(
            "batch must be sorted (non-decreasing), as torch_geometric's Batch produces it. Reorder the "
            "nodes with perm = torch.argsort(batch, stable=True) and index pos and batch with perm."
        )
    return batch


def check_positive_int(value: int, name: str) -> None:
    """Checks that ``value`` is an integer >= 1.

    Args:
        value: the value to check.
        name: the argument name, for the error message.

    Raises:
        ValueError: if ``value`` is not an ``int`` (booleans excluded) or is below 1.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")


def check_radius(radius: float) -> None:
    """Checks that ``radius`` is a finite number > 0.

    Args:
        radius: the cutoff distance.

    Raises:
        ValueError: if ``radius`` is not a Python ``int`` or ``float``, or is not finite and > 0.
    """
    if isinstance(radius, bool) or not isinstance(radius, (int, float)):
        raise ValueError(
            f"radius must be a Python float > 0, got {type(radius).__name__}. Pass float(radius)."
        )
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be finite and > 0, got {radius!r}.")


def check_edge_index(edge_index: Tensor, num_nodes: int, device: torch.device) -> None:
    """Checks that ``edge_index`` is an integer ``[2, E]`` tensor of node indices below ``num_nodes``.

    Args:
        edge_index: ``edge_index[0]`` senders, ``edge_index[1]`` receivers.
        num_nodes: number of nodes ``N``.
        device: the device of the node positions.

    Raises:
        ValueError: if ``edge_index`` is not an integer tensor of shape ``[2, E]`` on ``device``, or
            holds an index outside ``[0, N)``.

    Shapes:
        edge_index ``[2, E]``
    """
    if not _is_integer_tensor(edge_index):
        raise ValueError(
            "edge_index must be an integer tensor of shape [2, E]. Convert it with edge_index.long()."
        )
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(
            f"edge_index must have shape [2, E] (senders, receivers), got {list(edge_index.shape)}."
        )
    if edge_index.device != device:
        raise ValueError(
            f"edge_index is on {edge_index.device} but pos is on {device}. Move both to the same device."
        )
    if edge_index.numel() > 0 and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(
            f"edge_index holds node indices outside [0, {num_nodes}): min {int(edge_index.min())}, "
            f"max {int(edge_index.max())}. Check that it belongs to this pos."
        )

