import pytest
import torch

import ponita.graph._knn_graph as knn_module
from ponita.graph import knn_graph


def _reference(pos, k, batch, self_loops):
    dist = torch.linalg.vector_norm(pos[None, :, :] - pos[:, None, :], dim=-1)  # [N, N], [i, j]
    edges = set()
    for i in range(len(pos)):
        senders = [
            (float(dist[i, j]), j)
            for j in range(len(pos))
            if batch[j] == batch[i] and (self_loops or j != i)
        ]
        edges |= {(j, i) for _, j in sorted(senders)[:k]}
    return edges


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("self_loops", [False, True])
def test_knn_graph_matches_brute_force(dim, self_loops, batched_cloud, edge_set, check_receiver_sorted):
    sizes = [1, 3, 12, 1, 25]
    pos, batch = batched_cloud(dim, sizes)
    k = 4
    edge_index = knn_graph(pos, k, batch, self_loops=self_loops)
    assert edge_set(edge_index) == _reference(pos, k, batch, self_loops)
    check_receiver_sorted(edge_index, len(pos))
    assert torch.equal(batch[edge_index[0]], batch[edge_index[1]])
    graph_size = torch.tensor(sizes)[batch]  # [N]
    expected_degree = torch.clamp(graph_size - (0 if self_loops else 1), max=k)  # [N]
    assert torch.equal(torch.bincount(edge_index[1], minlength=len(pos)), expected_degree)


def test_knn_graph_is_the_same_in_small_chunks(monkeypatch, batched_cloud):
    pos, batch = batched_cloud(3, [20, 1, 30])
    expected = knn_graph(pos, 5, batch)
    monkeypatch.setattr(knn_module, "_CANDIDATES_PER_CHUNK", 7)
    assert torch.equal(knn_graph(pos, 5, batch), expected)


def test_knn_graph_breaks_ties_by_smaller_sender_index():
    pos = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    assert knn_graph(pos, 2)[:, :2].tolist() == [[1, 2], [0, 0]]


def test_knn_graph_without_batch_is_one_graph(batched_cloud):
    pos, _ = batched_cloud(2, [15])
    assert torch.equal(knn_graph(pos, 3), knn_graph(pos, 3, torch.zeros(15, dtype=torch.long)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_knn_graph_on_gpu_matches_cpu(batched_cloud):
    pos, batch = batched_cloud(3, [1, 30, 50])
    edge_index = knn_graph(pos.cuda(), 6, batch.cuda())
    assert edge_index.is_cuda
    assert torch.equal(edge_index.cpu(), knn_graph(pos, 6, batch))


def test_knn_graph_with_no_nodes_is_empty():
    assert knn_graph(torch.empty(0, 2), 3).shape == (2, 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "k must be an integer >= 1, got 0"),
        ({"k": 2.5}, "k must be an integer >= 1, got 2.5"),
        ({"k": True}, "k must be an integer >= 1, got True"),
        ({"pos": torch.rand(4, 1)}, r"pos must have shape \[N, 2\] or \[N, 3\]"),
        ({"pos": torch.tensor([[torch.inf, 0.0]] * 4)}, "NaN or infinite"),
        ({"batch": torch.tensor([0, 1, 1, 0])}, "batch must be sorted"),
        ({"batch": torch.tensor([0.0, 0, 0, 0])}, "batch must be an integer tensor"),
    ],
)
def test_knn_graph_rejects_bad_input(kwargs, match):
    arguments = {"pos": torch.rand(4, 3), "k": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        knn_graph(**arguments)
