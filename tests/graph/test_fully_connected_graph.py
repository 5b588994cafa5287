import pytest
import torch

from ponita.graph import fully_connected_graph

_needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


@pytest.mark.parametrize("self_loops", [True, False])
def test_fully_connected_graph_matches_all_pairs_within_each_graph(
    self_loops, edge_set, check_receiver_sorted
):
    batch = torch.tensor([0, 0, 0, 1, 2, 2, 2, 2, 4, 4])
    edge_index = fully_connected_graph(batch, self_loops=self_loops)
    expected = {
        (j, i)
        for i in range(len(batch))
        for j in range(len(batch))
        if batch[i] == batch[j] and (self_loops or i != j)
    }
    assert edge_set(edge_index) == expected
    assert edge_index.shape == (2, len(expected))
    check_receiver_sorted(edge_index, len(batch))


def test_fully_connected_graph_without_batch_is_one_graph():
    edge_index = fully_connected_graph(None, num_nodes=4, self_loops=False)
    assert torch.equal(edge_index, fully_connected_graph(torch.zeros(4, dtype=torch.long), self_loops=False))
    assert edge_index.shape == (2, 12)


def test_fully_connected_graph_single_node_graph_has_only_its_self_loop():
    assert fully_connected_graph(torch.tensor([0])).tolist() == [[0], [0]]
    assert fully_connected_graph(torch.tensor([0]), self_loops=False).shape == (2, 0)


def test_fully_connected_graph_with_no_nodes_is_empty():
    edge_index = fully_connected_graph(None, num_nodes=0)
    assert edge_index.shape == (2, 0) and edge_index.dtype == torch.long


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=_needs_gpu)])
def test_fully_connected_graph_without_batch_is_built_on_the_given_device(device):
    edge_index = fully_connected_graph(None, num_nodes=3, device=device)
    assert edge_index.device.type == device
    assert torch.equal(edge_index.cpu(), fully_connected_graph(None, num_nodes=3))


def test_fully_connected_graph_rejects_a_device_with_a_batch():
    with pytest.raises(ValueError, match="device='cpu' is only for batch=None"):
        fully_connected_graph(torch.tensor([0, 0]), device="cpu")


def test_fully_connected_graph_accepts_matching_num_nodes():
    batch = torch.tensor([0, 1, 1])
    assert torch.equal(fully_connected_graph(batch, num_nodes=3), fully_connected_graph(batch))


@pytest.mark.parametrize(
    ("batch", "num_nodes", "match"),
    [
        (None, None, "needs batch or num_nodes"),
        (None, -1, "num_nodes must be an integer >= 0"),
        (torch.tensor([0, 0, 1]), 4, r"batch must have shape \[N\] = \[4\] .*, got \[3\]"),
        (torch.tensor([0, 1, 0]), None, "batch must be sorted"),
        (torch.tensor([0.0, 1.0]), None, "batch must be an integer tensor"),
        (torch.tensor([[0, 1]]), None, r"batch must have shape \[N\]"),
        (torch.tensor([-1, 0]), None, "negative graph id"),
    ],
)
def test_fully_connected_graph_rejects_bad_input(batch, num_nodes, match):
    with pytest.raises(ValueError, match=match):
        fully_connected_graph(batch, num_nodes=num_nodes)


@pytest.mark.parametrize("self_loops", [True, False])
def test_sizes_known_on_the_host_give_the_same_edges_without_a_sync(self_loops):
    from torch_geometric.data import Batch, Data

    from ponita.graph import graph_sizes
    from ponita.testing import HostSyncCounter

    data = Batch.from_data_list([Data(pos=torch.zeros(n, 3)) for n in (3, 1, 4, 0, 2)])
    sizes = graph_sizes(data)
    assert sizes == [3, 1, 4, 0, 2] and graph_sizes(Data(pos=torch.zeros(3, 3))) is None
    with HostSyncCounter() as counter:
        fast = fully_connected_graph(data.batch, self_loops=self_loops, sizes=sizes)
    assert counter.total == 0
    assert torch.equal(fast, fully_connected_graph(data.batch, self_loops=self_loops))  # same edges, same order
    assert torch.equal(fully_connected_graph(None, 3, self_loops, sizes=[3]), fully_connected_graph(None, 3, self_loops))


def test_sizes_must_add_up_to_the_nodes():
    with pytest.raises(ValueError, match="summing to the 4 nodes"):
        fully_connected_graph(torch.zeros(4, dtype=torch.long), sizes=[3])
    with pytest.raises(ValueError, match="node counts >= 0"):
        fully_connected_graph(None, num_nodes=1, sizes=[2, -1])
