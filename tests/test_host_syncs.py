"""The forward pass waits for the device only where the data decide a size (counted on the CPU)."""

import pytest
import torch
from torch_geometric.data import Batch, Data

import ponita
from ponita import Ponita
from ponita.testing import HostSyncCounter

BUNDLES = ("R2xS1", "R3xS2", "SE2", "SE3")


def _model(space: str, **options) -> Ponita:
    vectors = int(space not in ("R2", "R3"))
    return Ponita(input_dim=2, input_dim_vec=vectors, output_dim_vec=vectors, hidden_dim=8, num_layers=2,
                  space=space, num_ori=4 if space in BUNDLES else None, **options)


def _molecule(space: str, num_nodes: int, seed: int, edges: bool) -> Data:
    generator = torch.Generator().manual_seed(seed)
    dim = 2 if space.startswith(("R2", "SE2")) else 3
    ori = torch.randn(num_nodes, dim, generator=generator)
    rot, _ = torch.linalg.qr(torch.randn(num_nodes, dim, dim, generator=generator))
    rot[:, :, 0] *= torch.linalg.det(rot).sign()[:, None]
    data = Data(pos=2.0 * torch.randn(num_nodes, dim, generator=generator),
                x=torch.randn(num_nodes, 2, generator=generator), vec=torch.randn(num_nodes, 1, dim, generator=generator),
                ori=ori / ori.norm(dim=-1, keepdim=True), rot=rot)
    if edges:
        receivers, senders = torch.meshgrid(torch.arange(num_nodes), torch.arange(num_nodes), indexing="ij")
        data.edge_index = torch.stack([senders[senders != receivers], receivers[senders != receivers]])
    return data


def _syncs(model: Ponita, data: Data) -> dict:
    with HostSyncCounter() as counter:
        model(data)
    return dict(counter.counts)


@pytest.mark.parametrize("space", [space for space in ponita.SPACES if not space.endswith("-lifted")])
def test_forward_with_given_edges_never_waits_for_the_device(space):
    assert _syncs(_model(space, task_level="node"), _molecule(space, 7, 0, edges=True)) == {}
    batch = Batch.from_data_list([_molecule(space, n, n, edges=True) for n in (7, 5)])
    assert _syncs(_model(space, task_level="graph"), batch) == {}


@pytest.mark.parametrize("space", ["R3", "R3xS2"])
def test_fully_connected_graph_of_one_molecule_is_built_without_a_sync(space):
    assert _syncs(_model(space, task_level="node"), _molecule(space, 7, 0, edges=False)) == {}


def test_lifted_space_waits_only_for_the_sizes_of_the_lifted_point_cloud():
    """Lifting: which edges are loops, which atoms have points (nonzero), and two ragged totals."""
    assert _syncs(_model("R3xS2-lifted", task_level="node"), _molecule("R3xS2-lifted", 7, 0, edges=True)) == {
        "item": 2, "nonzero": 2}


def test_counter_sees_host_reads_and_value_dependent_sizes():
    """Negative control: every kind the counter knows, once each."""
    x = torch.arange(6.0)
    with HostSyncCounter() as counter:
        _ = float(x.sum())
        _ = x[x > 2]
        _ = torch.nonzero(x)
        _ = torch.unique_consecutive(x)
        _ = torch.bincount(x.long())
        _ = torch.repeat_interleave(torch.tensor([1, 2]))
        _ = torch.repeat_interleave(torch.tensor([1, 2]), output_size=3)  # size given: no sync
    assert dict(counter.counts) == {"item": 1, "boolean index": 1, "nonzero": 1, "unique": 1, "bincount": 1,
                                    "repeat_interleave": 1}


def test_potential_energy_and_forces_of_one_molecule_never_wait_for_the_device():
    """What molecular dynamics calls every step: species check, fully connected graph, forward, forces."""
    from ponita.models import PonitaPotential

    model = PonitaPotential([1, 6, 8], {1: 0.0, 6: 0.0, 8: 0.0}, 1.0, hidden_dim=8, num_layers=2, num_ori=4)
    molecule = Data(z=torch.tensor([6, 6, 8, 1, 1, 1, 1, 1, 1]), pos=torch.randn(9, 3))
    with HostSyncCounter() as counter:
        model(molecule)
    assert dict(counter.counts) == {}
