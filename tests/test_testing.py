"""ponita.testing on small pure-torch models: every kind of field and output, permutations, edges, and errors.

The zoo models run through the same checks in ``tests/models/test_zoo_shared_checks.py``.
"""

import dataclasses

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from ponita.geometry import random_rotation
from ponita.testing import assert_equivariant, assert_reload_identical

F64 = torch.float64
POINTS_AND_VELOCITIES = {"pos": "position", "vel": "vector"}


def points(num_nodes: int = 5, **fields: Tensor) -> Data:
    return Data(pos=torch.randn(num_nodes, 3, dtype=F64), vel=torch.randn(num_nodes, 3, dtype=F64), **fields)


class Drift(nn.Module):
    """Moves every point by its velocity: a position output, ``[N, 3]``."""

    def forward(self, data: Data) -> Tensor:
        return data.pos + data.vel


class RelativeToFirst(nn.Module):
    """Positions relative to node 0: SE(3)-equivariant, but not permutation-equivariant."""

    def forward(self, data: Data) -> Tensor:
        return data.pos - data.pos[0]


class Outer(nn.Module):
    """The outer product of each velocity with itself, ``[N, 3, 3]``: a rank-2 tensor, :math:`T \\mapsto R T R^T`."""

    def forward(self, data: Data) -> Tensor:
        return data.vel[:, :, None] * data.vel[:, None, :]


class EdgeSum(nn.Module):
    """Per receiver, the sum of ``pos[sender] - pos[receiver]`` over ``edge_index``: vectors ``[N, 3]``."""

    def forward(self, data: Data) -> Tensor:
        sender, receiver = data.edge_index
        return torch.zeros_like(data.pos).index_add_(0, receiver, data.pos[sender] - data.pos[receiver])


class Spread(nn.Module):
    """Per graph, the squared distances to the centroid summed: an invariant ``[G]``, and the centred positions."""

    def forward(self, data: Data) -> tuple[Tensor, Tensor]:
        num_graphs = int(data.batch.max()) + 1
        counts = torch.zeros(num_graphs, dtype=F64).index_add_(0, data.batch, torch.ones_like(data.pos[:, 0]))
        centroid = torch.zeros(num_graphs, 3, dtype=F64).index_add_(0, data.batch, data.pos) / counts[:, None]
        centred = data.pos - centroid[data.batch]  # [N, 3]
        spread = torch.zeros(num_graphs, dtype=F64).index_add_(0, data.batch, centred.square().sum(-1))  # [G]
        return spread, centred


@dataclasses.dataclass
class ScaleConfig:
    factor: float


class Scale(nn.Module):
    """A model with a config and ``from_config`` whose output also depends on state outside both (``extra``)."""

    extra = 0.0

    def __init__(self, config: ScaleConfig) -> None:
        super().__init__()
        self.config = config
        self.weight = nn.Parameter(torch.ones(1, dtype=F64))

    @classmethod
    def from_config(cls, config: ScaleConfig) -> "Scale":
        return cls(config)

    def forward(self, data: Data) -> Tensor:
        return data.pos * self.weight * self.config.factor + self.extra


def test_position_outputs_rotate_and_translate() -> None:
    errors = assert_equivariant(Drift(), points(), inputs=POINTS_AND_VELOCITIES, outputs=("position",))
    assert len(errors) == 1 and float(errors[0]) < 1e-12


def test_a_wrong_declaration_is_caught() -> None:
    with pytest.raises(AssertionError, match=r"not equivariant[\s\S]*0: vector .* NO"):
        assert_equivariant(Drift(), points(), inputs=POINTS_AND_VELOCITIES, outputs=("vector",))  # forgets t
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(Drift(), points(), inputs={"pos": "position"}, outputs=("position",))  # vel not rotated
    assert_equivariant(Drift(), points(), translation=False, inputs=POINTS_AND_VELOCITIES, outputs=("vector",))


def test_a_custom_output_transformation_checks_a_rank_2_tensor() -> None:
    def rank_2(tensor: Tensor, rotation: Tensor, shift: Tensor) -> Tensor:
        return rotation @ tensor @ rotation.T  # [N, 3, 3]

    errors = assert_equivariant(Outer(), points(), inputs=POINTS_AND_VELOCITIES, outputs=(rank_2,))
    assert float(errors[0]) < 1e-12
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(Outer(), points(), inputs=POINTS_AND_VELOCITIES, outputs=("vector",))


def test_a_model_that_depends_on_the_node_order_is_caught() -> None:
    model = RelativeToFirst()
    with pytest.raises(AssertionError, match=r"rotation \(det \+1.000\) \+ translation \+ permutation"):
        assert_equivariant(model, points(), outputs=("vector",))
    assert_equivariant(model, points(), outputs=("vector",), permutation=False)


def test_given_edges_are_relabelled_with_the_nodes() -> None:
    edge_index = torch.tensor([[1, 2, 3, 4, 0, 2, 0], [0, 0, 1, 2, 3, 4, 4]])  # [2, E], not symmetric
    data = points(edge_index=edge_index, edge_weight=torch.rand(7, 1, dtype=F64))
    assert_equivariant(EdgeSum(), data, outputs=("vector",))
    assert torch.equal(data.edge_index, edge_index)  # the input is not modified


def test_graph_level_outputs_are_not_permuted_and_node_level_ones_are() -> None:
    batch = Batch.from_data_list([points(4), points(5), points(3)])
    spread_error, centred_error = assert_equivariant(Spread(), batch, rotation=random_rotation(3, dtype=F64))
    assert spread_error < 1e-12 and centred_error < 1e-12


def test_poses_rotate_from_the_left() -> None:
    class FirstAxis(nn.Module):
        def forward(self, data: Data) -> Tensor:
            return data.rot[:, :, 0]  # [N, 3]: R R_i e_1 = R (R_i e_1), a vector

    rot = torch.stack([random_rotation(3, dtype=F64) for _ in range(5)])  # [N, 3, 3]
    assert_equivariant(FirstAxis(), points(rot=rot), outputs=("vector",))
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(FirstAxis(), points(rot=rot), inputs={"pos": "position"}, outputs=("vector",))


def test_bad_declarations_are_errors() -> None:
    with pytest.raises(ValueError, match=r"inputs\['vel'\] = 'velocity' is not a transformation"):
        assert_equivariant(Drift(), points(), inputs={"pos": "position", "vel": "velocity"}, outputs=("position",))
    with pytest.raises(ValueError, match=r"outputs\[0\] = 'pseudovector' is not a transformation"):
        assert_equivariant(Drift(), points(), inputs=POINTS_AND_VELOCITIES, outputs=("pseudovector",))
    with pytest.raises(ValueError, match="data has no position field"):
        assert_equivariant(Drift(), points(), inputs={"x": "position"}, outputs=("position",))
    with pytest.raises(ValueError, match=r"returned 1 output\(s\), but outputs describes 2 \(invariant, vector\)"):
        assert_equivariant(Drift(), points(), inputs=POINTS_AND_VELOCITIES)


def test_the_call_argument_runs_another_method() -> None:
    model = Spread()
    errors = assert_equivariant(model, Batch.from_data_list([points(4), points(3)]),
                                outputs=("invariant",), call=lambda m, data: m(data)[0])  # fmt: skip
    assert len(errors) == 1


def test_reload_check_needs_a_config_and_detects_state_outside_it(tmp_path) -> None:
    model = Scale(ScaleConfig(2.0))
    assert_reload_identical(model, points(), tmp_path)
    model.extra = 1e-12  # defines the output, but is neither config nor state dict
    with pytest.raises(AssertionError, match="Reloaded output 0 differs"):
        assert_reload_identical(model, points(), tmp_path)
    with pytest.raises(TypeError, match="Drift needs a dataclass instance `config` and a `from_config` class method"):
        assert_reload_identical(Drift(), points(), tmp_path)
