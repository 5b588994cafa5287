"""The Ponita network: equivariance in every space, batching, forces, calibration and input errors."""

import dataclasses
import math

import pytest
import torch
from torch_geometric.data import Batch, Data

import ponita
from ponita import Ponita, PonitaConfig
from ponita.geometry import rotation_group
from ponita.geometry import random_rotation
from ponita.testing import assert_equivariant, assert_forces_match_finite_differences

F64 = torch.float64
BUNDLES = ("R2xS1", "R3xS2", "SE2", "SE3")
POINT_CLOUDS = (
    "R2", "R3", "R2xS1-lifted", "R3xS2-lifted", "R2xS1-points", "R3xS2-points", "SE2-points", "SE3-points",
)


def _dim(space: str) -> int:
    return int(space[2]) if space.startswith("SE") else int(space[1])


def _has_vectors(space: str) -> bool:
    return space not in ("R2", "R3")


def _model(space: str, **options: object) -> Ponita:
    """A tiny float64 network with scalar and (where possible) vector inputs and outputs."""
    vectors = int(_has_vectors(space))
    defaults = dict(
        hidden_dim=8, num_layers=2, output_dim=2, output_dim_vec=vectors, input_dim_vec=vectors, space=space,
        task_level="node", widening_factor=2,
    )  # fmt: skip
    if space in BUNDLES:
        defaults["num_ori"] = 12 if _dim(space) == 3 else 6
    if space == "R3xS2":
        defaults["grid"] = "polyhedron"
    defaults.update(options)
    return Ponita(input_dim=defaults.pop("input_dim", 2), **defaults).to(F64)


def _data(space: str, num_nodes: int = 5, input_dim: int = 2, **extra: torch.Tensor) -> Data:
    dim = _dim(space)
    data = Data(pos=torch.randn(num_nodes, dim, dtype=F64), x=torch.randn(num_nodes, input_dim, dtype=F64))
    if _has_vectors(space):
        data.vec = torch.randn(num_nodes, 1, dim, dtype=F64)
    if space.endswith("-points"):
        frames = _frames(space, num_nodes)
        data[frames[0]] = frames[1]
    for key, value in extra.items():
        data[key] = value
    return data


def _frames(space: str, num_nodes: int) -> tuple[str, torch.Tensor]:
    """The per-node frames a ``*-points`` space reads: unit ``ori`` or rotations ``rot``."""
    dim = _dim(space)
    if space.startswith("SE"):
        return "rot", torch.stack([random_rotation(dim) for _ in range(num_nodes)])  # [N, n, n]
    return "ori", torch.nn.functional.normalize(torch.randn(num_nodes, dim, dtype=F64), dim=-1)  # [N, n]


def _planar_rotation(angle: float) -> torch.Tensor:
    return torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=F64)


def _grid_rotations(space: str, num_ori: int) -> list[torch.Tensor | None]:
    """Rotations that map the model's grid onto itself (``None``: a random rotation, for point clouds)."""
    if space in POINT_CLOUDS:
        return [None, None]
    if _dim(space) == 2:
        return [_planar_rotation(2.0 * math.pi * k / num_ori) for k in (1, num_ori - 2)]
    group = {12: "tetrahedral", 24: "octahedral", 60: "icosahedral"}[num_ori] if space == "SE3" else "icosahedral"
    elements = rotation_group(group)
    return [elements[k] for k in (3, elements.shape[0] - 1)]


def _check_equivariance(model: Ponita, data: Data, space: str) -> None:
    for rotation in _grid_rotations(space, model.num_ori):
        assert_equivariant(model, data, rotation=rotation)


@pytest.mark.parametrize("space", ponita.SPACES)
@pytest.mark.parametrize("task_level", ["node", "graph"])
def test_ponita_is_equivariant_in_every_space(space: str, task_level: str) -> None:
    model = _model(space, task_level=task_level)
    _check_equivariance(model, _data(space), space)


@pytest.mark.parametrize(
    ("space", "options"),
    [
        ("R3xS2", dict(separable=False)),
        ("R3xS2", dict(separable=False, complete_invariants=True)),
        ("R3xS2", dict(depthwise=False)),
        ("R3xS2", dict(grid="polyhedron", num_ori=20)),
        ("R2xS1", dict(separable=False, complete_invariants=True)),
        ("R2xS1", dict(complete_invariants=True)),
        ("SE3", dict(separable=False)),
        ("SE3", dict(num_ori=24)),
        ("SE3", dict(num_ori=60, hidden_dim=4)),
        ("SE2", dict(separable=False)),
        ("R3xS2-lifted", dict(complete_invariants=True)),
        ("R2xS1-lifted", dict(complete_invariants=True)),
        ("R3xS2-points", dict(complete_invariants=True)),
        ("R2xS1-points", dict(complete_invariants=True, radius=1.5)),
        ("SE3-points", dict(depthwise=False)),
        ("R3", dict(depthwise=False, layer_scale=0.5)),
        ("R3xS2", dict(multiple_readouts=False)),
    ],
    ids=lambda value: value if isinstance(value, str) else "-".join(f"{k}={v}" for k, v in value.items()),
)
def test_ponita_variants_are_equivariant(space: str, options: dict) -> None:
    model = _model(space, **options)
    _check_equivariance(model, _data(space), space)


@pytest.mark.parametrize("space", ["R3", "R3xS2", "R3xS2-lifted", "SE2"])
def test_ponita_with_radius_graph_is_equivariant(space: str) -> None:
    model = _model(space, radius=1.5)
    data = _data(space, num_nodes=8)
    _check_equivariance(model, data, space)


@pytest.mark.parametrize("space", ["R2", "R3xS2", "SE3", "R3xS2-points", "R2xS1-lifted"])
@pytest.mark.parametrize("radius", [None, 1.5])
def test_static_edges_give_the_network_its_own_function(space: str, radius: float | None) -> None:
    model = _model(space, radius=radius)
    data = _data(space, num_nodes=8)  # standard normal positions: some pairs lie beyond 1.5
    edges = model.static_edges(8)
    if radius is not None and space.endswith("-lifted"):
        assert edges is None  # lifted points come from the edges: the extra pairs would change the function
        return
    assert edges.shape == (2, 64)
    given = data.clone()
    given.edge_index = edges
    for own, fixed in zip(model(data), model(given)):
        assert torch.allclose(own, fixed, atol=1e-12)


@pytest.mark.parametrize("space", ["R3", "R3xS2", "R2xS1-lifted", "SE3"])
def test_ponita_with_given_edge_index_is_equivariant_and_uses_it(space: str) -> None:
    model = _model(space)
    edge_index = torch.tensor([[1, 2, 3, 4, 0, 2, 0], [0, 0, 1, 2, 3, 4, 4]])  # [2, E]
    data = _data(space, edge_index=edge_index)
    _check_equivariance(model, data, space)
    fully_connected = Data(**{key: value for key, value in data.items() if key != "edge_index"})
    assert not torch.allclose(model(data)[0], model(fully_connected)[0])


@pytest.mark.parametrize("space", ["R3", "R3xS2", "R3xS2-lifted", "SE2"])
def test_ponita_with_kernel_condition_is_equivariant_and_uses_it(space: str) -> None:
    model = _model(space, kernel_condition_dim=2)
    data = _data(space, kernel_condition=torch.randn(5, 2, dtype=F64))
    _check_equivariance(model, data, space)
    changed = data.clone()
    changed.kernel_condition = data.kernel_condition + 1.0
    assert not torch.allclose(model(data)[0], model(changed)[0])


def test_ponita_float32_is_equivariant_to_float32_tolerance() -> None:
    model = Ponita(input_dim=2, hidden_dim=8, num_layers=2, output_dim_vec=1, num_ori=12, grid="polyhedron",
                   task_level="node")  # fmt: skip
    data = Data(pos=torch.randn(5, 3), x=torch.randn(5, 2))
    assert_equivariant(model, data, rotation=rotation_group("icosahedral", dtype=torch.float32)[7])


def test_ponita_float32_lifted_complete_invariants_are_equivariant() -> None:
    # lifted points pair with points they are oriented towards, where the complete frame is undefined
    model = Ponita(input_dim=2, hidden_dim=8, num_layers=2, output_dim_vec=1, space="R3xS2-lifted",
                   complete_invariants=True, task_level="node")  # fmt: skip
    assert_equivariant(model, Data(pos=torch.randn(5, 3), x=torch.randn(5, 2)))


def test_assert_equivariant_detects_a_broken_symmetry() -> None:
    # a fibre bundle over a Fibonacci grid is only approximately equivariant to a random rotation
    model = _model("R3xS2", grid="fibonacci", num_ori=8)
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(model, _data("R3xS2"), rotation=random_rotation(3))


@pytest.mark.parametrize("space", ["R3", "R3xS2", "R2xS1-lifted", "SE3"])
@pytest.mark.parametrize("task_level", ["node", "graph"])
def test_ponita_batch_equals_graphs_one_by_one(space: str, task_level: str) -> None:
    model = _model(space, task_level=task_level, radius=2.0)
    graphs = [_data(space, num_nodes=n) for n in (3, 4, 5)]
    batch = Batch.from_data_list(graphs)
    scalar, vector = model(batch)
    singles = [model(graph) for graph in graphs]
    torch.testing.assert_close(scalar, torch.cat([s for s, _ in singles]), atol=1e-12, rtol=0)
    torch.testing.assert_close(vector, torch.cat([v for _, v in singles]), atol=1e-12, rtol=0)
    assert scalar.shape[0] == (12 if task_level == "node" else 3)
    _check_equivariance(model, batch, space)


@pytest.mark.parametrize("space", ponita.SPACES)
@pytest.mark.parametrize("task_level", ["node", "graph"])
def test_ponita_output_shapes(space: str, task_level: str) -> None:
    model = _model(space, task_level=task_level, output_dim=3, output_dim_vec=2 if _has_vectors(space) else 0)
    scalar, vector = model(Batch.from_data_list([_data(space, num_nodes=3), _data(space, num_nodes=4)]))
    rows = 7 if task_level == "node" else 2
    assert scalar.shape == (rows, 3)
    assert vector.shape == (rows, 2 if _has_vectors(space) else 0, _dim(space))
    assert scalar.dtype == vector.dtype == F64


def test_ponita_multiple_readouts_average_every_layer() -> None:
    torch.manual_seed(0)
    single = _model("R3xS2", multiple_readouts=False, num_layers=3)
    torch.manual_seed(0)
    multiple = _model("R3xS2", multiple_readouts=True, num_layers=3)
    assert len(single.readouts) == 1 and len(multiple.readouts) == 3
    data = _data("R3xS2")
    assert not torch.allclose(single(data)[0], multiple(data)[0])


def test_ponita_does_not_modify_its_input() -> None:
    model = _model("R3xS2", radius=2.0)
    data = _data("R3xS2")
    before = {key: value.clone() for key, value in data.items()}
    model(data)
    assert set(data.keys()) == set(before)
    assert all(torch.equal(data[key], value) for key, value in before.items())


def _energy_fn(model: Ponita, x: torch.Tensor):
    def energy(pos: torch.Tensor) -> torch.Tensor:
        scalar, _ = model(Data(pos=pos, x=x))
        return scalar.sum()

    return energy


@pytest.mark.parametrize(
    ("space", "options"),
    [("R3xS2", dict(grid="fibonacci", num_ori=8)), ("R3", {}), ("R3", dict(radius=2.0)), ("SE3", {})],
    ids=["r3s2-fibre-bundle", "r3", "r3-radius", "se3"],
)
def test_ponita_forces_match_finite_differences(space: str, options: dict) -> None:
    model = _model(space, task_level="graph", output_dim=1, output_dim_vec=0, input_dim_vec=0, **options)
    pos = torch.randn(4, 3, dtype=F64)
    assert_forces_match_finite_differences(_energy_fn(model, torch.randn(4, 2, dtype=F64)), pos, atol=1e-6)


def test_forces_check_detects_wrong_forces() -> None:
    def inconsistent(pos: torch.Tensor) -> torch.Tensor:  # gradient of pos², values of something else
        return (pos**2).sum() + (pos.detach() ** 3).sum()

    with pytest.raises(AssertionError, match="differ from finite differences"):
        assert_forces_match_finite_differences(inconsistent, torch.ones(2, 3, dtype=F64))


@pytest.mark.parametrize("space", ["R3xS2", "R3", "SE3"])
def test_ponita_second_derivatives_are_finite_at_self_loops_and_coincident_atoms(space: str) -> None:
    model = _model(space, task_level="graph", output_dim=1, output_dim_vec=0, input_dim_vec=0, self_loops=True)
    pos = torch.randn(4, 3, dtype=F64)
    pos[1] = pos[0]  # two atoms at the same position
    pos.requires_grad_(True)
    energy = model(Data(pos=pos, x=torch.randn(4, 2, dtype=F64)))[0].sum()
    (gradient,) = torch.autograd.grad(energy, pos, create_graph=True)
    forces = -gradient
    assert torch.isfinite(forces).all()
    loss = forces.pow(2).sum()
    parameters = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, parameters, allow_unused=True)
    assert any(g is not None for g in grads)
    assert all(torch.isfinite(g).all() for g in grads if g is not None)


def test_ponita_lifted_space_rejects_coincident_atoms() -> None:
    model = _model("R3xS2-lifted")
    data = _data("R3xS2-lifted")
    data.pos[1] = data.pos[0]
    with pytest.raises(ValueError, match="same position"):
        model(data)


def _conv_std_ratio(model: Ponita, data: Data) -> float:
    captured = {}

    def hook(module, inputs, output):
        captured["in"], captured["out"] = inputs[0], output - module.bias

    handle = model.layers[0].conv.register_forward_hook(hook)
    with torch.no_grad():
        model(data)
    handle.remove()
    return float(captured["out"].std() / captured["in"].std())


@pytest.mark.parametrize("space", ["R3", "R3xS2"])
def test_ponita_calibrate_sets_flag_and_unit_layer_gain(space: str) -> None:
    model = _model(space)
    data = _data(space, num_nodes=6)
    assert not bool(model.calibrated)
    before = _conv_std_ratio(model, data)
    model.calibrate(data)
    assert bool(model.calibrated)
    after = _conv_std_ratio(model, data)
    assert abs(after - 1.0) < 0.05
    assert abs(before - 1.0) > 0.05
    model.reset_parameters()
    assert not bool(model.calibrated)


def test_ponita_calibrate_is_deterministic() -> None:
    data = _data("R3xS2", num_nodes=6)
    models = []
    for _ in range(2):
        torch.manual_seed(3)
        model = _model("R3xS2")
        model.calibrate(data)
        models.append(model.state_dict())
    assert models[0].keys() == models[1].keys()
    assert all(torch.equal(models[0][key], models[1][key]) for key in models[0])


@pytest.mark.parametrize("space", ["R3xS2", "R3", "SE3"])
def test_grown_network_computes_the_trained_one_and_trains_its_new_blocks(space: str) -> None:
    torch.manual_seed(0)
    small = _model(space, num_layers=2, multiple_readouts=False)
    data = _data(space, num_nodes=6)
    small.calibrate(data)
    deep = _model(space, num_layers=5, multiple_readouts=False)
    deep.grow_from(small)
    assert bool(deep.calibrated)
    for mine, theirs in zip(deep(data), small(data)):
        assert torch.equal(mine, theirs)  # identity blocks add exact zeros
    _check_equivariance(deep, data, space)
    deep(data)[0].square().sum().backward()
    for block in deep.layers[2:]:
        assert block.mlp[-1].weight.grad.abs().sum() > 0  # the new blocks learn from the first step
        assert all(p.grad is None or not p.grad.any() for p in block.conv.parameters())  # behind the zero layer


@pytest.mark.parametrize("space", ["R3xS2", "R3", "SE3"])
def test_wider_network_computes_the_trained_one_and_its_copies_learn_apart(space: str) -> None:
    torch.manual_seed(0)
    small = _model(space, num_layers=2, basis_dim=8, layer_scale=0.5, multiple_readouts=False)
    data = _data(space, num_nodes=6)
    small.calibrate(data)
    large = _model(space, num_layers=3, hidden_dim=16, basis_dim=8, layer_scale=0.5, multiple_readouts=False)
    large.grow_from(small)
    for mine, theirs in zip(large(data), small(data)):
        torch.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-10)
    _check_equivariance(large, data, space)
    conv = large.layers[0].conv.weight  # [B, 2C]: channel c and its copy c + C start equal ...
    assert torch.equal(conv[:, :8], conv[:, 8:])
    split = large.layers[0].mlp[0].weight  # [4·2C, 2C]: ... while the weights on copied inputs were split apart
    assert not torch.equal(split[:, :8], split[:, 8:])
    torch.testing.assert_close(split[:, :8] + split[:, 8:], torch.cat([small.layers[0].mlp[0].weight] * 2))
    large(data)[0].square().sum().backward()
    assert not torch.allclose(conv.grad[:, :8], conv.grad[:, 8:])  # so the copies get different gradients


def test_grow_from_refuses_networks_that_do_not_fit() -> None:
    small = _model("R3xS2", num_layers=2, basis_dim=8, multiple_readouts=False)
    with pytest.raises(ValueError, match=r"Only num_layers and hidden_dim may differ.*widening_factor 2 → 4"):
        _model("R3xS2", num_layers=3, basis_dim=8, widening_factor=4, multiple_readouts=False).grow_from(small)
    for options in ({"num_layers": 1}, {"hidden_dim": 12}, {"hidden_dim": 4}):
        with pytest.raises(ValueError, match="hidden_dim a multiple of its"):
            _model("R3xS2", **{"num_layers": 2, "basis_dim": 8, "multiple_readouts": False, **options}).grow_from(small)
    with pytest.raises(ValueError, match="needs depthwise=true and a basis_dim of its own"):
        _model("R3xS2", hidden_dim=16, multiple_readouts=False).grow_from(_model("R3xS2", multiple_readouts=False))
    averaged = _model("R3xS2", num_layers=2, multiple_readouts=True)
    with pytest.raises(ValueError, match="multiple_readouts=false"):
        _model("R3xS2", num_layers=3, multiple_readouts=True).grow_from(averaged)
    same = _model("R3xS2", num_layers=2, multiple_readouts=True)
    same.grow_from(averaged)  # the same architecture: a plain copy
    data = _data("R3xS2")
    assert torch.equal(same(data)[0], averaged(data)[0])


def test_regridded_network_keeps_the_weights_and_samples_its_own_directions() -> None:
    torch.manual_seed(0)
    small = _model("R3xS2", grid="fibonacci", num_ori=8, multiple_readouts=False)
    data = _data("R3xS2", num_nodes=6)
    small.calibrate(data)
    with pytest.raises(ValueError, match=r"num_ori 8 → 16.*ask for it with regrid=True"):
        _model("R3xS2", grid="fibonacci", num_ori=16, multiple_readouts=False).grow_from(small)
    same = _model("R3xS2", grid="fibonacci", num_ori=8, multiple_readouts=False)
    same.grow_from(small, regrid=True)  # the same grid: the plain growth, the same function
    assert torch.equal(same(data)[0], small(data)[0])
    outputs = {}
    for num_ori in (16, 128, 256):
        grown = _model("R3xS2", grid="fibonacci", num_ori=num_ori, num_layers=3, multiple_readouts=False)
        fresh_grid = grown.grid.clone()
        grown.grow_from(small, regrid=True)
        assert torch.equal(grown.grid, fresh_grid)  # its own directions, not the trained network's
        weights = grown.state_dict()
        assert all(torch.equal(value, weights[name]) for name, value in small.state_dict().items() if name != "space.grid")
        outputs[num_ori] = grown(data)[1].detach()

    def change(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm() / b.norm())

    # A changed function, but one discretisation of the same integrals over the sphere: finer grids agree.
    assert change(small(data)[1].detach(), outputs[16]) > 10 * change(outputs[128], outputs[256])
    oriented = _model("R3xS2", grid="polyhedron", num_ori=12, multiple_readouts=False)
    oriented.grow_from(small, regrid=True)  # another kind of grid is a regrid too
    _check_equivariance(oriented, data, "R3xS2")  # exactly, on the icosahedron's symmetries


def test_ponita_config_round_trip() -> None:
    model = _model("SE3", radius=2.0)
    rebuilt = Ponita(**dataclasses.asdict(model.config))
    assert rebuilt.config == model.config
    assert isinstance(model.config, PonitaConfig)


def test_ponita_grid_is_float64_buffer_for_exact_double_precision() -> None:
    model = Ponita(input_dim=1, hidden_dim=8, num_layers=1, num_ori=12, grid="polyhedron")
    assert "space.grid" in model.state_dict()
    assert model.grid.dtype == F64 and model.grid is model.space.grid
    assert model.embedding.weight.dtype == torch.float32
    model(Data(pos=torch.randn(3, 3), x=torch.ones(3, 1)))  # the float32 network runs with the float64 grid


def test_ponita_repr() -> None:
    model = _model("R3xS2")
    assert model.extra_repr() == "space='R3xS2', num_ori=12, hidden_dim=8, num_layers=2, task_level='node'"
    assert _model("R3").extra_repr() == "space='R3', num_ori=None, hidden_dim=8, num_layers=2, task_level='node'"


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (dict(space="R4"), ValueError, "Unknown space 'R4'"),
        (dict(task_level="edge"), ValueError, "Unknown task_level 'edge'"),
        (dict(num_layer=2), TypeError, r"Unknown Ponita argument\(s\) \['num_layer'\]"),
        (dict(space="R3", num_ori=8), ValueError, "point cloud without an orientation grid; leave num_ori=None"),
        (dict(space="R3xS2-lifted", num_ori=8), ValueError, "point cloud without an orientation grid"),
        (dict(num_ori=0), ValueError, "num_ori must be ≥ 1"),
        (dict(grid="random"), ValueError, "Unknown grid 'random'"),
        (dict(space="R3", output_dim_vec=1), ValueError, "has only scalar features; for vector inputs or outputs"),
        (dict(input_dim=0), ValueError, "needs input"),
        (dict(hidden_dim=0), ValueError, "hidden_dim must be ≥ 1"),
        (dict(output_dim=-1), ValueError, "output_dim must be ≥ 0"),
        (dict(radius=0.0), ValueError, "radius must be positive or None"),
        (dict(grid="polyhedron", num_ori=10), ValueError, r"grid='polyhedron' needs num_ori in \(4, 6, 8, 12, 20\)"),
        (dict(grid="polyhedron"), ValueError, "needs num_ori in .* got 16"),  # the default grid size
        (dict(degree=0), ValueError, "degree must be an integer ≥ 1"),
        (dict(basis_dim=0), ValueError, "basis_dim must be ≥ 1 or None"),
        (dict(layer_scale=0.0), ValueError, "layer_scale must be a finite number > 0"),
        (dict(separable=False, depthwise=False), ValueError, "non-separable fibre-bundle convolution is depthwise"),
        (dict(space="R3", connect_lifted="all"), ValueError, "connect_lifted='all' applies to the edge-lifted spaces"),
        (dict(space="R3xS2-lifted", connect_lifted="some"), ValueError, "Unknown connect_lifted 'some'"),
    ],
    ids=lambda value: None if isinstance(value, (dict, type)) else str(value)[:20],
)
def test_ponita_rejects_bad_options(options: dict, error: type, match: str) -> None:
    options = dict(dict(input_dim=1, hidden_dim=8, num_layers=1), **options)
    with pytest.raises(error, match=match):
        Ponita(**options)


def _bad_inputs() -> dict[str, tuple[Data, str]]:
    good = dict(pos=torch.randn(4, 3, dtype=F64), x=torch.randn(4, 2, dtype=F64), vec=torch.randn(4, 1, 3, dtype=F64))

    def with_(**changes: object) -> Data:
        return Data(**{**good, **changes})

    nan_pos, inf_pos = good["pos"].clone(), good["pos"].clone()
    nan_pos[1, 2], inf_pos[0, 0] = float("nan"), float("inf")
    nan_x = good["x"].clone()
    nan_x[0, 0] = float("nan")
    return {
        "pos-2d": (with_(pos=torch.randn(4, 2, dtype=F64)), r"data.pos must have shape \[N, 3\] .* got \[4, 2\]"),
        "pos-1d": (with_(pos=torch.randn(12, dtype=F64)), r"data.pos must have shape \[N, 3\]"),
        "pos-missing": (Data(x=good["x"], vec=good["vec"]), r"data.pos must have shape \[N, 3\] .* got None"),
        "pos-nan": (with_(pos=nan_pos), "data.pos contains NaN or inf"),
        "pos-inf": (with_(pos=inf_pos), "data.pos contains NaN or inf"),
        "empty": (with_(pos=torch.zeros(0, 3, dtype=F64), x=torch.zeros(0, 2, dtype=F64),
                        vec=torch.zeros(0, 1, 3, dtype=F64)), "empty"),  # fmt: skip
        "x-shape": (
            with_(x=torch.randn(4, 3, dtype=F64)), r"data.x must have shape \[N, input_dim\] = \[4, 2\], got \[4, 3\]"
        ),
        "x-missing": (Data(pos=good["pos"], vec=good["vec"]), r"data.x must have shape .* got None"),
        "x-nan": (with_(x=nan_x), "data.x contains NaN or inf"),
        "vec-last-dim": (
            with_(vec=torch.randn(4, 1, 2, dtype=F64)), r"data.vec must have shape \[N, input_dim_vec, 3\]"
        ),
        "vec-missing": (Data(pos=good["pos"], x=good["x"]), r"data.vec must have shape .* got None"),
        "edge-index-shape": (
            with_(edge_index=torch.zeros(3, 2, dtype=torch.long)), r"data.edge_index must have shape \[2, E\]"
        ),
        "batch-shape": (with_(batch=torch.zeros(3, dtype=torch.long)), r"data.batch must have shape \[N\] = \[4\]"),
    }


BAD_INPUTS = _bad_inputs()


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_ponita_rejects_bad_input(case: str) -> None:
    model = _model("R3xS2")
    data, match = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=match):
        model(data)


def test_ponita_rejects_missing_kernel_condition() -> None:
    model = _model("R3", kernel_condition_dim=2)
    with pytest.raises(ValueError, match=r"data.kernel_condition must have shape \[5, 2\], got None"):
        model(_data("R3"))


def test_ponita_rejects_edge_index_outside_nodes() -> None:
    model = _model("R3")
    with pytest.raises(ValueError, match="outside"):
        model(_data("R3", edge_index=torch.tensor([[0, 7], [1, 0]])))


@pytest.mark.parametrize(
    ("space", "key", "value", "message"),
    [
        ("R3xS2-points", "ori", None, r"space 'R3xS2-points' needs data.ori of shape \[5, 3\], got None"),
        ("R3xS2-points", "ori", torch.ones(5, 3, dtype=F64), r"data.ori\[0\] is not a valid unit vector; normalise"),
        ("SE3-points", "rot", torch.ones(5, 3, 3, dtype=F64), r"data.rot\[0\] is not a valid rotation"),
        ("SE2-points", "rot", torch.diag(torch.tensor([1.0, -1.0], dtype=F64)).expand(5, 2, 2), r"data.rot\[0\] is not a valid rotation"),
        ("SE2-points", "rot", torch.eye(3, dtype=F64).expand(5, 3, 3), r"needs data.rot of shape \[5, 2, 2\]"),
    ],
)
def test_ponita_rejects_missing_or_invalid_frames(space: str, key: str, value, message: str) -> None:
    model = _model(space)
    data = _data(space)
    data[key] = value
    with pytest.raises(ValueError, match=message):
        model(data)


def test_readouts_run_in_full_precision_under_bf16_autocast() -> None:
    """Energies are sums of per-atom readouts; rounded to bf16 they would lose ~0.4 % of every term."""
    torch.manual_seed(0)
    model = Ponita(input_dim=1, hidden_dim=16, num_layers=2, num_ori=6, task_level="graph")
    data = Data(pos=torch.randn(12, 3), x=torch.ones(12, 1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scalar, _ = model(data)
    assert scalar.dtype == torch.float32
    readout = model.readouts[-1]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rounded = readout(torch.randn(4, 16))
    assert rounded.dtype == torch.bfloat16  # what the readout would give without the guard
