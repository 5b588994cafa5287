import pytest
import torch

import ponita.graph._radius_graph as radius_module
from ponita.graph import radius_graph


def _reference(pos, radius, batch, self_loops):
    dist = torch.linalg.vector_norm(pos[None, :, :] - pos[:, None, :], dim=-1)  # [N, N], [i, j]
    adjacent = (dist < radius) & (batch[:, None] == batch[None, :])
    if not self_loops:
        adjacent.fill_diagonal_(False)
    dst, src = adjacent.nonzero().t()
    return {(j, i) for j, i in zip(src.tolist(), dst.tolist())}, dist


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("self_loops", [False, True])
def test_radius_graph_matches_brute_force(dim, self_loops, batched_cloud, edge_set, check_receiver_sorted):
    pos, batch = batched_cloud(dim, [1, 5, 17, 1, 40])
    edge_index = radius_graph(pos, 0.7, batch, self_loops=self_loops)
    expected, _ = _reference(pos, 0.7, batch, self_loops)
    assert edge_set(edge_index) == expected
    check_receiver_sorted(edge_index, len(pos))
    assert torch.equal(batch[edge_index[0]], batch[edge_index[1]])


def test_radius_graph_float32_matches_brute_force(batched_cloud, edge_set):
    pos, batch = batched_cloud(3, [30, 50], dtype=torch.float32)
    assert edge_set(radius_graph(pos, 0.5, batch)) == _reference(pos, 0.5, batch, False)[0]


def test_radius_graph_is_the_same_in_small_chunks(monkeypatch, batched_cloud):
    pos, batch = batched_cloud(3, [20, 1, 30])
    expected = radius_graph(pos, 0.9, batch)
    monkeypatch.setattr(radius_module, "_CANDIDATES_PER_CHUNK", 7)
    assert torch.equal(radius_graph(pos, 0.9, batch), expected)


def test_radius_graph_excludes_pairs_at_exactly_the_radius():
    grid = torch.cartesian_prod(torch.arange(4.0), torch.arange(4.0), torch.arange(4.0))  # [64, 3]
    assert radius_graph(grid, 1.0).shape == (2, 0)
    degrees = torch.bincount(radius_graph(grid, 1.001)[1], minlength=64)
    assert degrees.min() == 3 and degrees.max() == 6


def test_radius_graph_never_connects_graphs(batched_cloud):
    pos, _ = batched_cloud(2, [20])
    batch = torch.tensor([0] * 10 + [3] * 10)  # graph ids may skip values
    edge_index = radius_graph(torch.cat([pos[:10], pos[:10]]), 5.0, batch)  # two identical graphs
    assert torch.equal(batch[edge_index[0]], batch[edge_index[1]])
    assert edge_index.shape == (2, 2 * 10 * 9)


def test_radius_graph_without_batch_is_one_graph(batched_cloud):
    pos, _ = batched_cloud(3, [25])
    assert torch.equal(radius_graph(pos, 0.6), radius_graph(pos, 0.6, torch.zeros(25, dtype=torch.long)))


@pytest.mark.parametrize("self_loops", [False, True])
def test_radius_graph_max_num_neighbors_keeps_the_nearest(
    self_loops, batched_cloud, edge_set, check_receiver_sorted
):
    pos, batch = batched_cloud(3, [3, 40])
    k = 4
    edge_index = radius_graph(pos, 1.0, batch, self_loops=self_loops, max_num_neighbors=k)
    full, dist = _reference(pos, 1.0, batch, self_loops)
    expected = set()
    for i in range(len(pos)):
        senders = sorted((float(dist[i, j]), j) for j, r in full if r == i)
        expected |= {(j, i) for _, j in senders[:k]}
    assert edge_set(edge_index) == expected
    assert int(torch.bincount(edge_index[1]).max()) == k
    check_receiver_sorted(edge_index, len(pos))


def test_radius_graph_on_20k_points_is_exact_on_a_sample(check_receiver_sorted):
    # Speed is measured by the benchmarks, not here (STYLE R14).
    side = 17.0  # about 15 neighbours per point within radius 1
    pos = side * torch.rand(20_000, 3)  # [N, 3]
    edge_index = radius_graph(pos, 1.0)
    check_receiver_sorted(edge_index, len(pos))
    degrees = torch.bincount(edge_index[1], minlength=len(pos))  # [N]
    sample = torch.randperm(len(pos))[:100]
    dist = torch.linalg.vector_norm(pos[None, :, :] - pos[sample, None, :], dim=-1)  # [100, N]
    assert torch.equal(degrees[sample], (dist < 1.0).sum(1) - 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_radius_graph_on_gpu_matches_cpu(batched_cloud):
    pos, batch = batched_cloud(3, [1, 30, 50])
    edge_index = radius_graph(pos.cuda(), 0.6, batch.cuda(), max_num_neighbors=5)
    assert edge_index.is_cuda
    assert torch.equal(edge_index.cpu(), radius_graph(pos, 0.6, batch, max_num_neighbors=5))


def test_radius_graph_carries_no_gradient():
    pos = torch.rand(10, 3, requires_grad=True)
    edge_index = radius_graph(pos, 0.8)
    assert not edge_index.requires_grad and edge_index.dtype == torch.long


def test_radius_graph_with_no_nodes_is_empty():
    assert radius_graph(torch.empty(0, 3), 1.0).shape == (2, 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pos": torch.rand(5, 4)}, r"pos must have shape \[N, 2\] or \[N, 3\], got \[5, 4\]"),
        ({"pos": torch.rand(5)}, r"pos must have shape \[N, 2\] or \[N, 3\], got \[5\]"),
        ({"pos": torch.ones(5, 3, dtype=torch.long)}, "pos must be a floating point tensor"),
        ({"pos": torch.tensor([[0.0, torch.nan, 0.0]])}, "NaN or infinite"),
        ({"radius": 0.0}, "radius must be finite and > 0, got 0.0"),
        ({"radius": -1.0}, "radius must be finite and > 0"),
        ({"radius": float("inf")}, "radius must be finite and > 0"),
        ({"radius": torch.tensor(1.0)}, "radius must be a Python float"),
        ({"batch": torch.tensor([1, 0, 0, 0, 0])}, "batch must be sorted"),
        ({"batch": torch.zeros(4, dtype=torch.long)}, r"batch must have shape \[N\] = \[5\]"),
        ({"max_num_neighbors": 0}, "max_num_neighbors must be an integer >= 1, got 0"),
        ({"pos": 1e6 * torch.eye(3), "radius": 1e-4}, "too many for int64 cell keys"),
    ],
)
def test_radius_graph_rejects_bad_input(kwargs, match):
    arguments = {"pos": torch.rand(5, 3), "radius": 1.0} | kwargs
    with pytest.raises(ValueError, match=match):
        radius_graph(**arguments)
