import pytest
import torch

from ponita.geometry import random_rotation
from ponita.graph import LiftedPointCloud, fully_connected_graph, lift_edges_to_oriented_points, radius_graph


def _points_per_atom(cloud: LiftedPointCloud) -> list[tuple[int, tuple[float, ...]]]:
    return sorted(zip(cloud.node_index.tolist(), map(tuple, cloud.ori.tolist())))


def _molecule(dim: int, batched_cloud) -> tuple[torch.Tensor, torch.Tensor]:
    pos, batch = batched_cloud(dim, [1, 6, 9])
    return pos, radius_graph(pos, 1.0, batch)


@pytest.mark.parametrize("dim", [2, 3])
def test_lifting_gives_one_point_per_edge_at_its_receiver(dim, batched_cloud):
    pos, edge_index = _molecule(dim, batched_cloud)
    lifted = lift_edges_to_oriented_points(pos, edge_index)
    num_edges = edge_index.shape[1]
    assert isinstance(lifted, LiftedPointCloud)
    assert lifted.pos.shape == (num_edges, dim) and lifted.ori.shape == (num_edges, dim)
    assert lifted.node_index.shape == (num_edges,)
    # A receiver-sorted input keeps its order: lifted point m is edge m.
    src, dst = edge_index
    assert torch.equal(lifted.node_index, dst)
    assert torch.equal(lifted.pos, pos[dst])
    direction = pos[src] - pos[dst]  # [E, n]
    assert torch.allclose(lifted.ori, direction / direction.norm(dim=-1, keepdim=True))
    assert torch.allclose(lifted.ori.norm(dim=-1), torch.ones(num_edges, dtype=pos.dtype))


@pytest.mark.parametrize("dim", [2, 3])
def test_lifted_edges_connect_all_points_of_adjacent_atoms(
    dim, batched_cloud, edge_set, check_receiver_sorted
):
    pos, edge_index = _molecule(dim, batched_cloud)
    lifted = lift_edges_to_oriented_points(pos, edge_index)
    num_atoms = len(pos)
    adjacent = torch.eye(num_atoms, dtype=torch.bool)  # [N, N], [j, i], self-loops added
    adjacent[edge_index[0], edge_index[1]] = True
    lifted_adjacent = adjacent[lifted.node_index[:, None], lifted.node_index[None, :]]  # [M, M]
    expected = set(map(tuple, lifted_adjacent.nonzero().tolist()))
    assert edge_set(lifted.edge_index) == expected
    check_receiver_sorted(lifted.edge_index, len(lifted.node_index))

    points_per_atom = torch.bincount(lifted.node_index, minlength=num_atoms)  # [N]
    loops = torch.arange(num_atoms)
    base_src = torch.cat([edge_index[0], loops])
    base_dst = torch.cat([edge_index[1], loops])
    assert lifted.edge_index.shape[1] == int((points_per_atom[base_src] * points_per_atom[base_dst]).sum())


def test_lifting_drops_input_self_loops_and_atoms_without_incoming_edges():
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [5.0, 5.0, 5.0]])
    # Self-loops at atoms 0, 1 and 3; atoms 2 and 3 receive no non-loop edge.
    edge_index = torch.tensor([[0, 1, 1, 0, 3, 2], [0, 0, 1, 1, 3, 1]])
    lifted = lift_edges_to_oriented_points(pos, edge_index)
    assert lifted.node_index.tolist() == [0, 1, 1]
    s = 5.0**-0.5  # atom 2 seen from atom 1 is (-1, 2, 0) / sqrt(5)
    expected_ori = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [-s, 2 * s, 0.0]])
    assert torch.allclose(lifted.ori, expected_ori)
    # atoms 0 (1 point) and 1 (2 points): 1*1 + 1*2 + 2*1 + 2*2 lifted edges; atoms 2 and 3 add none.
    assert lifted.edge_index.tolist() == [[0, 1, 2, 0, 1, 2, 0, 1, 2], [0, 0, 0, 1, 1, 1, 2, 2, 2]]


def test_lifting_does_not_depend_on_input_edge_order(batched_cloud):
    pos, edge_index = _molecule(3, batched_cloud)
    lifted = lift_edges_to_oriented_points(pos, edge_index)
    shuffled = lift_edges_to_oriented_points(pos, edge_index[:, torch.randperm(edge_index.shape[1])])
    assert torch.equal(shuffled.node_index, lifted.node_index)
    assert torch.equal(shuffled.edge_index, lifted.edge_index)
    # Within an atom the points follow the input order; as sets per atom they agree.
    assert _points_per_atom(shuffled) == _points_per_atom(lifted)


@pytest.mark.parametrize("dim", [2, 3])
def test_lifting_is_equivariant_under_rotation_and_translation(dim, batched_cloud):
    pos, edge_index = _molecule(dim, batched_cloud)
    rotation = random_rotation(dim)  # [n, n]
    shift = torch.randn(dim, dtype=pos.dtype)  # [n]
    lifted = lift_edges_to_oriented_points(pos, edge_index)
    moved = lift_edges_to_oriented_points(pos @ rotation.T + shift, edge_index)
    assert torch.allclose(moved.ori, lifted.ori @ rotation.T)
    assert torch.allclose(moved.pos, lifted.pos @ rotation.T + shift)
    assert torch.equal(moved.node_index, lifted.node_index)
    assert torch.equal(moved.edge_index, lifted.edge_index)


def test_lifting_is_differentiable_in_pos():
    pos = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    edge_index = torch.tensor([[1, 2, 0, 3], [0, 0, 1, 2]])
    assert torch.autograd.gradcheck(lambda p: lift_edges_to_oriented_points(p, edge_index).ori, (pos,))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_lifting_on_gpu_matches_cpu(batched_cloud):
    pos, edge_index = _molecule(3, batched_cloud)
    lifted = lift_edges_to_oriented_points(pos.cuda(), edge_index.cuda())
    expected = lift_edges_to_oriented_points(pos, edge_index)
    assert lifted.edge_index.is_cuda
    assert torch.equal(lifted.edge_index.cpu(), expected.edge_index)
    assert torch.allclose(lifted.ori.cpu(), expected.ori)


def test_lifting_rejects_edge_index_on_another_device_than_pos():
    # The meta device stands in for a GPU: the check runs on any machine.
    edge_index = torch.tensor([[1, 2], [0, 0]], device="meta")
    with pytest.raises(ValueError, match="edge_index is on meta but pos is on cpu. Move both to the same device"):
        lift_edges_to_oriented_points(torch.rand(3, 3), edge_index)


def test_lifting_of_no_edges_is_empty():
    lifted = lift_edges_to_oriented_points(torch.rand(3, 2), torch.tensor([[0, 1], [0, 1]]))
    assert lifted.pos.shape == (0, 2) and lifted.ori.shape == (0, 2)
    assert lifted.node_index.shape == (0,) and lifted.edge_index.shape == (2, 0)


def test_lifting_ignores_coincident_atoms_joined_only_by_self_loops():
    pos = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    lifted = lift_edges_to_oriented_points(pos, torch.tensor([[0, 2], [0, 1]]))
    assert lifted.ori.tolist() == [[1.0, 0.0]]


@pytest.mark.parametrize(
    ("pos", "edge_index", "match"),
    [
        (
            torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]),
            torch.tensor([[1, 0], [0, 2]]),
            r"edge 1 \(0 -> 2\) joins two atoms at the same position",
        ),
        (torch.rand(3, 3), torch.tensor([[1, 2, 1], [0, 0, 0]]), "holds the edge 1 -> 0 more than once"),
        (torch.rand(3, 3), torch.tensor([[1, 3], [0, 0]]), r"indices outside \[0, 3\)"),
        (torch.rand(3, 3), torch.tensor([1, 0]), r"edge_index must have shape \[2, E\]"),
        (torch.rand(3, 3), torch.tensor([[1.0], [0.0]]), "edge_index must be an integer tensor"),
        (torch.rand(3, 5), torch.tensor([[1], [0]]), r"pos must have shape \[N, 2\] or \[N, 3\]"),
    ],
)
def test_lifting_rejects_bad_input(pos, edge_index, match):
    with pytest.raises(ValueError, match=match):
        lift_edges_to_oriented_points(pos, edge_index)


def test_lifted_points_can_be_connected_along_another_graph() -> None:
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [3.0, 3.0, 3.0]])
    bonds = torch.tensor([[0, 1, 0, 2], [1, 0, 2, 0]])  # atom 3 has no bond: no lifted point
    along_bonds = lift_edges_to_oriented_points(pos, bonds)
    everywhere = lift_edges_to_oriented_points(pos, bonds, connect_index=fully_connected_graph(None, 4))
    assert torch.equal(everywhere.node_index, along_bonds.node_index) and torch.equal(everywhere.ori, along_bonds.ori)
    assert along_bonds.edge_index.shape[1] == 14  # the points of atoms 1 and 2 are not bonded to each other
    assert sorted(map(tuple, everywhere.edge_index.t().tolist())) == sorted((j, i) for i in range(4) for j in range(4))
