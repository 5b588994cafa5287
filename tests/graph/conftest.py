"""Shared pieces of the graph tests: random batched point clouds and edge-list checks."""

from collections.abc import Callable

import pytest
import torch
from torch import Tensor


def _batched_cloud(dim: int, sizes: list[int], dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))  # [N]
    pos = 2.0 * torch.rand(int(sum(sizes)), dim, dtype=dtype)  # [N, n]
    return pos, batch


def _edge_set(edge_index: Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.t().tolist()))


def _check_receiver_sorted(edge_index: Tensor, num_nodes: int) -> None:
    assert edge_index.dtype == torch.long
    assert edge_index.dim() == 2 and edge_index.shape[0] == 2
    key = edge_index[1] * num_nodes + edge_index[0]  # [E]
    assert bool((key[1:] > key[:-1]).all()), "edges must be sorted by (receiver, sender), without duplicates"


@pytest.fixture
def batched_cloud() -> Callable[..., tuple[Tensor, Tensor]]:
    """Random positions in [0, 2)^n for graphs of the given sizes, with their sorted batch vector."""
    return _batched_cloud


@pytest.fixture
def edge_set() -> Callable[[Tensor], set[tuple[int, int]]]:
    """The edges of an ``edge_index`` as a set of ``(sender, receiver)`` pairs."""
    return _edge_set


@pytest.fixture
def check_receiver_sorted() -> Callable[[Tensor, int], None]:
    """Asserts a ``[2, E]`` int64 edge index sorted by receiver then sender, without duplicate edges."""
    return _check_receiver_sorted
