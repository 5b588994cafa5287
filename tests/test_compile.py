"""``torch.compile(model, fullgraph=True)`` captures the forward of every space (edges given) and matches eager.

``fullgraph=True`` turns every graph break into an error, and a host synchronisation (``.item()``,
``int(tensor)``, ``nonzero``, a Python branch on a tensor value) is a graph break, so these tests prove
the forward has none. The lifted spaces are the exception by nature: how many oriented points the
edges lift to depends on the edges, so their compile needs PyTorch's capture of data-dependent shapes
(``capture_dynamic_output_shape_ops``), and still no break.

All spaces are captured with the ``aot_eager`` backend (the full Dynamo + AOTAutograd capture, without
code generation, ≈ 3 s each); one space also goes through Inductor's code generation, the path users take.
"""

import pytest
import torch
from torch_geometric.data import Data

import ponita
from ponita import Ponita

BUNDLES = ("R2xS1", "R3xS2", "SE2", "SE3")
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


def _model(space: str, radius: float | None = 3.0) -> Ponita:
    vectors = int(space not in ("R2", "R3"))
    torch.manual_seed(0)
    return Ponita(
        input_dim=2, input_dim_vec=vectors, output_dim_vec=vectors, hidden_dim=8, num_layers=2, space=space,
        num_ori=4 if space in BUNDLES else None, task_level="node", radius=radius,
    )


def _data(space: str, num_nodes: int = 6) -> Data:
    """A float32 point cloud with every input any space reads, and all edges but self-loops."""
    generator = torch.Generator().manual_seed(1)
    dim = 2 if space.startswith(("R2", "SE2")) else 3
    ori = torch.randn(num_nodes, dim, generator=generator)
    rot, _ = torch.linalg.qr(torch.randn(num_nodes, dim, dim, generator=generator))
    rot[:, :, 0] *= torch.linalg.det(rot).sign()[:, None]  # proper rotations
    receivers, senders = torch.meshgrid(torch.arange(num_nodes), torch.arange(num_nodes), indexing="ij")
    off_diagonal = senders != receivers
    return Data(
        pos=torch.randn(num_nodes, dim, generator=generator),
        x=torch.randn(num_nodes, 2, generator=generator),
        vec=torch.randn(num_nodes, 1, dim, generator=generator),
        ori=ori / ori.norm(dim=-1, keepdim=True),
        rot=rot,
        edge_index=torch.stack([senders[off_diagonal], receivers[off_diagonal]]),
    )


def _compile(model: torch.nn.Module, space: str, backend: str):
    """``torch.compile(model, fullgraph=True)``; the lifted spaces' calls capture data-dependent shapes."""
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    lifted = space.endswith("-lifted")

    def call(data: Data):
        with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=lifted, capture_scalar_outputs=lifted):
            return compiled(data)

    return call


def _assert_matches_eager(model: Ponita, compiled, data: Data) -> None:
    scalar, vector = compiled(data)
    expected_scalar, expected_vector = model(data)
    torch.testing.assert_close(scalar, expected_scalar, **TOLERANCE)
    torch.testing.assert_close(vector, expected_vector, **TOLERANCE)


@pytest.mark.parametrize("space", ponita.SPACES)
def test_forward_of_every_space_compiles_as_one_graph_and_matches_eager(space):
    model = _model(space)
    _assert_matches_eager(model, _compile(model, space, "aot_eager"), _data(space))


def test_inductor_compiled_fully_connected_network_matches_eager_also_on_new_positions():
    """Inductor's generated code for the paper's space (no radius), then a second call with moved atoms."""
    model = _model("R3xS2", radius=None)
    compiled = _compile(model, "R3xS2", "inductor")
    data = _data("R3xS2")
    _assert_matches_eager(model, compiled, data)
    data.pos = data.pos + 0.1 * torch.randn_like(data.pos)
    _assert_matches_eager(model, compiled, data)


def test_a_graph_break_fails_the_capture_so_the_tests_above_can_fail():
    """Negative control: a Python branch on a tensor value (a host sync) makes fullgraph capture raise."""
    model = _model("R3")

    class Syncing(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, data: Data):
            scalar, vector = self.model(data)
            if scalar.sum() > 0:  # reads the value on the host
                scalar = -scalar
            return scalar, vector

    compiled = _compile(Syncing(), "R3", "aot_eager")
    with pytest.raises(Exception, match="(?i)data-dependent|graph break|Unsupported"):
        compiled(_data("R3"))


def test_invalid_input_still_fails_inside_the_compiled_graph():
    """The boundary checks are device-side assertions, so the compiled graph keeps them."""
    model = _model("R3xS2")
    compiled = _compile(model, "R3xS2", "aot_eager")
    data = _data("R3xS2")
    compiled(data)
    data.pos = data.pos.clone()
    data.pos[2, 0] = float("nan")
    with pytest.raises(RuntimeError, match="data.pos contains NaN or inf"):
        compiled(data)
