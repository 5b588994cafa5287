r"""The PONITA network: one class for R^n, R^n×S^(n−1) (point cloud or fibre bundle) and SE(n).

Bekkers, Vadgama, Hesselink, van der Linden, Romero, "Fast, Expressive SE(n) Equivariant Networks
through Weight-Sharing in Position-Orientation Space", ICLR 2024 (arXiv 2310.02970).

Forward pass: graph → points of the space → bi-invariant attributes → kernel basis (once, shared
by all layers) → lifted and embedded input → ConvNeXt layers (with readouts) → scalar and vector
outputs per node or per graph.
"""

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ponita._spaces import DEFAULT_NUM_ORI, S2_GRIDS, SPACES, SpaceOptions, make_space, space_spec
from ponita.geometry import POLYHEDRON_SIZES, invariants_rn
from ponita.ops import require
from ponita.graph._fully_connected_graph import (
    fully_connected_edges,
    fully_connected_single,
    fully_connected_sizes,
    graph_sizes,
    num_graphs as count_graphs,
)
from ponita.graph._radius_graph import radius_graph_unchecked
from ponita.nn import ConvNextBlock, KernelBasis, KernelInputs, PolynomialCutoff
from ponita.ops import scatter_sum
from ponita.ops._receiver_csr import receiver_csr_unchecked

logger = logging.getLogger(__name__)

TASK_LEVELS = ("node", "graph")
CONNECT_LIFTED = ("edges", "all")


@dataclass
class PonitaConfig:
    """Every argument of :class:`Ponita`; ``Ponita.from_config(config)`` rebuilds a network.

    Attributes:
        input_dim: number of input scalars per node ``F`` (``data.x``; 0 for none).
        hidden_dim: channels ``C``.
        output_dim: output scalars.
        num_layers: ConvNeXt layers.
        output_dim_vec: output vectors (not for ``"R2"``/``"R3"``).
        input_dim_vec: input vectors per node ``V`` (``data.vec``; not for ``"R2"``/``"R3"``).
        space: one of ``"R2"``, ``"R3"`` (point cloud, PNITA), ``"R2xS1"``, ``"R3xS2"`` (fibre
            bundle over a grid of directions, PONITA), ``"R2xS1-lifted"``, ``"R3xS2-lifted"``
            (point cloud of oriented points made from the edges), ``"R2xS1-points"``,
            ``"R3xS2-points"`` (oriented points given as ``data.ori`` ``[N, n]``), ``"SE2"``,
            ``"SE3"`` (fibre bundle over a grid of rotations), ``"SE2-points"``, ``"SE3-points"``
            (poses given as ``data.rot`` ``[N, n, n]``).
        num_ori: grid size for fibre bundles (``None``: 16); must be ``None`` for point clouds.
        basis_dim: basis functions ``B`` (``None``: ``hidden_dim``).
        degree: highest power of the polynomial embedding of the attributes (3 = cubic).
        widening_factor: hidden width of the ConvNeXt MLP relative to ``hidden_dim``.
        layer_scale: initial layer scale, or ``None`` for none.
        multiple_readouts: average readouts after every layer instead of only the last.
        radius: cutoff radius; builds a radius graph and applies a smooth window. ``None``: fully
            connected, no window.
        task_level: ``"node"`` or ``"graph"`` (sum over the nodes of each graph).
        separable: separable fibre-bundle convolution (spatial, then over the fibre).
        depthwise: per-channel kernels instead of full channel mixing.
        complete_invariants: add the attributes that make the R^n×S^(n−1) set complete.
        grid: S² grid, ``"fibonacci"``, ``"repulsion"`` or ``"polyhedron"`` (Platonic vertices).
        self_loops: add self-loops to the graphs the network builds.
        connect_lifted: for the edge-lifted spaces (``"R2xS1-lifted"``, ``"R3xS2-lifted"``), which of the
            oriented points made from the edges (``data.edge_index``, e.g. a molecule's bonds) are connected:
            ``"edges"``, those of atoms joined by an edge (and of the same atom); ``"all"``, those of atoms
            joined in the graph the network builds itself (all pairs of a graph, or pairs within ``radius``):
            PONITA's QM9 point cloud (the paper's ``num_ori=-1``).
        kernel_condition_dim: per-node scalars (``data.kernel_condition``) of the sender appended
            to the attributes, e.g. a diffusion noise level.
    """

    input_dim: int
    hidden_dim: int = 128
    output_dim: int = 1
    num_layers: int = 5
    output_dim_vec: int = 0
    input_dim_vec: int = 0
    space: str = "R3xS2"
    num_ori: int | None = None
    basis_dim: int | None = None
    degree: int = 3
    widening_factor: int = 4
    layer_scale: float | None = None
    multiple_readouts: bool = True
    radius: float | None = None
    task_level: str = "graph"
    separable: bool = True
    depthwise: bool = True
    complete_invariants: bool = False
    grid: str = "fibonacci"
    self_loops: bool = True
    kernel_condition_dim: int = 0
    connect_lifted: str = "edges"

    def __post_init__(self) -> None:
        """Checks the options once, where they enter; the network then trusts them."""
        config = self
        space_class, dim = space_spec(config.space)
        if config.task_level not in TASK_LEVELS:
            raise ValueError(f"Unknown task_level {config.task_level!r}; choose one of {TASK_LEVELS}.")
        is_bundle = space_class.is_fibre_bundle
        if not is_bundle and config.num_ori is not None:
            raise ValueError(
                f"space {config.space!r} is a point cloud without an orientation grid; leave num_ori=None "
                "or choose a fibre-bundle space (R2xS1, R3xS2, SE2, SE3)."
            )
        if is_bundle and config.num_ori is not None and config.num_ori < 1:
            raise ValueError(f"num_ori must be ≥ 1 for the fibre bundle {config.space!r}, got {config.num_ori}.")
        if not space_class.has_vectors and (config.input_dim_vec or config.output_dim_vec):
            raise ValueError(
                f"space {config.space!r} has only scalar features; for vector inputs or outputs use "
                f"'R{dim}xS{dim - 1}' or another space with orientations."
            )
        for name in ("input_dim", "input_dim_vec", "output_dim", "output_dim_vec", "kernel_condition_dim"):
            if getattr(config, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(config, name)}.")
        for name in ("hidden_dim", "num_layers", "widening_factor"):
            if getattr(config, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(config, name)}.")
        if config.input_dim + config.input_dim_vec == 0:
            raise ValueError("The network needs input: set input_dim (data.x) or input_dim_vec (data.vec) ≥ 1.")
        if config.radius is not None and config.radius <= 0:
            raise ValueError(f"radius must be positive or None (fully connected), got {config.radius}.")
        if config.grid not in S2_GRIDS:
            raise ValueError(f"Unknown grid {config.grid!r}; choose one of {S2_GRIDS}.")
        num_ori = config.num_ori or DEFAULT_NUM_ORI
        if is_bundle and dim == 3 and config.grid == "polyhedron" and num_ori not in POLYHEDRON_SIZES:
            raise ValueError(f"grid='polyhedron' needs num_ori in {POLYHEDRON_SIZES} (the Platonic solids), got "
                             f"{num_ori}; or choose grid='fibonacci'.")
        if isinstance(config.degree, bool) or not isinstance(config.degree, int) or config.degree < 1:
            raise ValueError(f"degree must be an integer ≥ 1 (3 means up to cubic terms), got {config.degree!r}.")
        if config.basis_dim is not None and config.basis_dim < 1:
            raise ValueError(f"basis_dim must be ≥ 1 or None (hidden_dim), got {config.basis_dim}.")
        if config.layer_scale is not None and not 0 < config.layer_scale < math.inf:
            raise ValueError(f"layer_scale must be a finite number > 0 or None (none), got {config.layer_scale}.")
        if is_bundle and not config.separable and not config.depthwise:
            raise ValueError("A non-separable fibre-bundle convolution is depthwise; set depthwise=True.")
        if config.connect_lifted not in CONNECT_LIFTED:
            raise ValueError(f"Unknown connect_lifted {config.connect_lifted!r}; choose one of {CONNECT_LIFTED}.")
        if config.connect_lifted != "edges" and not space_class.points_from_edges:
            lifted = [name for name in SPACES if space_spec(name)[0].points_from_edges]
            raise ValueError(f"connect_lifted={config.connect_lifted!r} applies to the edge-lifted spaces "
                             f"{lifted}, not {config.space!r}.")


class Ponita(nn.Module):
    r"""SE(n)-equivariant network with weight sharing over bi-invariant point-pair attributes.

    Each layer convolves with kernels :math:`k_l = \varphi W_l`, where the basis
    :math:`\varphi = \mathrm{MLP}(\mathrm{poly}(a_{ij}))` of the bi-invariant attributes
    :math:`a_{ij}` is computed once per forward pass. See :class:`PonitaConfig` for the arguments
    and the choice of space.

    Input: a torch-geometric ``Data``/``Batch`` with ``pos`` ``[N, n]``, ``x`` ``[N, F]`` (if
    ``input_dim > 0``), ``vec`` ``[N, V, n]`` (if ``input_dim_vec > 0``), optional ``batch``
    ``[N]``, optional ``edge_index`` ``[2, E]`` (used as given; otherwise built from ``radius``, or
    fully connected), and ``kernel_condition`` ``[N, D]`` if ``kernel_condition_dim > 0``. The input
    is never modified.

    Returns:
        ``(scalar, vector)``: ``[N, output_dim]`` and ``[N, output_dim_vec, n]`` for
        ``task_level="node"``, ``[G, ...]`` for ``"graph"``.

    Raises:
        ValueError: on an unknown option, or input of the wrong shape, with NaN/inf, or empty.

    Example:
        >>> from torch_geometric.data import Data
        >>> model = Ponita(input_dim=1, hidden_dim=16, output_dim=1, num_layers=2, output_dim_vec=1, num_ori=8)
        >>> scalar, vector = model(Data(pos=torch.randn(5, 3), x=torch.ones(5, 1)))
        >>> scalar.shape, vector.shape
        (torch.Size([1, 1]), torch.Size([1, 1, 3]))
    """

    def __init__(self, input_dim: int, **options: object) -> None:
        super().__init__()
        valid = {field.name for field in dataclasses.fields(PonitaConfig)}
        unknown = set(options) - valid
        if unknown:
            raise TypeError(f"Unknown Ponita argument(s) {sorted(unknown)}; valid arguments: {sorted(valid)}.")
        self.config = config = PonitaConfig(input_dim=input_dim, **options)  # type: ignore[arg-type]
        options = SpaceOptions(config.num_ori, config.complete_invariants, config.separable, config.grid)
        self.space = space = make_space(config.space, options)  # owns the grid: buffer "space.grid"
        self.dim, self.num_ori = space.dim, space.num_ori
        self.register_buffer("calibrated", torch.tensor(False))
        self.register_load_state_dict_pre_hook(_load_legacy_grid)

        hidden_dim = config.hidden_dim
        basis_dim = config.basis_dim or hidden_dim
        num_invariants = space.num_invariants + config.kernel_condition_dim
        self.basis = KernelBasis(num_invariants, hidden_dim, basis_dim, config.degree)
        self.fibre_basis = (
            KernelBasis(space.num_fibre_invariants, hidden_dim, basis_dim, config.degree)
            if space.num_fibre_invariants
            else None
        )
        self.window = PolynomialCutoff(config.radius) if config.radius is not None else None

        lifted_dim = config.input_dim + config.input_dim_vec * space.channels_per_vector
        self.embedding = nn.Linear(lifted_dim, hidden_dim, bias=False)
        self.layers = nn.ModuleList(
            ConvNextBlock(space.conv(hidden_dim, basis_dim, config.depthwise), config.widening_factor, config.layer_scale)
            for _ in range(config.num_layers)
        )
        readout_dim = config.output_dim + config.output_dim_vec * space.channels_per_vector
        num_readouts = config.num_layers if config.multiple_readouts else 1
        self.readouts = nn.ModuleList(nn.Linear(hidden_dim, readout_dim) for _ in range(num_readouts))
        self.reset_parameters()

    @property
    def grid(self) -> Tensor | None:
        """The space's orientation grid (float64 buffer ``space.grid``), or ``None`` for point clouds."""
        return getattr(self.space, "grid", None)

    @classmethod
    def from_config(cls, config: PonitaConfig) -> "Ponita":
        """A new network with the architecture ``config`` (fresh weights): ``Ponita.from_config(model.config)``.

        Example:
            >>> model = Ponita(input_dim=2, hidden_dim=8, num_layers=1, num_ori=4)
            >>> Ponita.from_config(model.config).config == model.config
            True
        """
        return cls(**dataclasses.asdict(config))

    def reset_parameters(self) -> None:
        """Re-initialises every parameter and clears the calibration flag."""
        self.basis.reset_parameters()
        if self.fibre_basis is not None:
            self.fibre_basis.reset_parameters()
        self.embedding.reset_parameters()
        for layer in self.layers:
            layer.reset_parameters()
        for readout in self.readouts:
            readout.reset_parameters()
        self.calibrated.fill_(False)

    @torch.no_grad()
    def grow_from(self, other: "Ponita", noise: float = 0.01, regrid: bool = False) -> None:
        """Starts this network from a trained one with as many or fewer layers and as many or fewer channels.

        A function-preserving growth (Chen et al.'s Net2Net, 2016): this network computes ``other``'s function, up
        to float rounding, and training continues from it with the added capacity.

        - **Deeper**: the first ``other.config.num_layers`` blocks take ``other``'s weights; every further block
          starts as the identity (the last linear layer of its MLP zero, its convolution freshly initialised).
        - **Wider** (``hidden_dim`` a multiple k of ``other``'s): every channel and hidden unit is copied k times,
          and every linear layer's weights on copied inputs are split among the copies, ``W/k + ε_a`` with
          ``Σ_a ε_a = 0``, so the sums stay exact while the copies' weights differ (``ε``: normal, ``noise`` times
          the layer's weight standard deviation) and they learn apart. Needs ``depthwise`` convolutions and a
          fixed ``basis_dim``.

        The kernel bases, the embedding and the readout take ``other``'s weights (copied and split the same way),
        and its calibration flag. Seed torch's generator first for reproducible splits.

        - **Regridded** (``regrid=True`` only): ``num_ori`` and ``grid`` may differ too. The weights are functions of
          the bi-invariants, so they carry over as they are, but they now sample the sphere at this network's
          directions: **the function changes** (it is a new discretisation of the fibre integrals, not the trained
          one; 8 trained directions read on 12 gave a generator +46 % denoising error, docs/generation.md), and
          training has to recover it. With equal grids it is the plain growth above.

        Raises:
            ValueError: if the configs differ in anything but ``num_layers`` and ``hidden_dim`` (and, with
                ``regrid``, ``num_ori`` and ``grid``), if ``other`` is
                deeper or wider, if the width is not a multiple, if the networks average several readouts and
                depths differ (extra readouts would change the function), or if a wider network's convolutions
                are not depthwise or its ``basis_dim`` follows ``hidden_dim``.

        Example:
            >>> small = Ponita(input_dim=2, hidden_dim=8, num_layers=1, num_ori=4, basis_dim=8, multiple_readouts=False)
            >>> large = Ponita(input_dim=2, hidden_dim=16, num_layers=3, num_ori=4, basis_dim=8, multiple_readouts=False)
            >>> large.grow_from(small)
            >>> data = Data(pos=torch.randn(5, 3), x=torch.randn(5, 2))
            >>> torch.allclose(large(data)[0], small(data)[0], atol=1e-5)
            True
        """
        mine, theirs = dataclasses.asdict(self.config), dataclasses.asdict(other.config)
        free = ("num_layers", "hidden_dim") + (("num_ori", "grid") if regrid else ())
        differ = [name for name, value in mine.items() if name not in free and value != theirs[name]]
        if differ:
            hint = ("" if regrid or not {"num_ori", "grid"} & set(differ) else
                    " Another direction grid changes the trained function; ask for it with regrid=True "
                    "(`ponita train`: init_regrid=true).")
            changes = ", ".join(f"{name} {theirs[name]!r} → {mine[name]!r}" for name in differ)
            raise ValueError(f"Only {' and '.join(free)} may differ from the network grown from; these differ: "
                             f"{changes}.{hint}")
        depth, extra = other.config.num_layers, self.config.num_layers - other.config.num_layers
        copies, remainder = divmod(self.config.hidden_dim, other.config.hidden_dim)
        if extra < 0 or copies < 1 or remainder:
            raise ValueError(
                f"A network of {self.config.num_layers} layers × {self.config.hidden_dim} channels cannot grow from one "
                f"of {depth} × {other.config.hidden_dim}: num_layers must be at least the trained network's and "
                "hidden_dim a multiple of its.")
        if extra and self.config.multiple_readouts:
            raise ValueError("With multiple_readouts the output averages a readout per layer, so extra layers would "
                             "change it; grow networks with multiple_readouts=false.")
        if copies > 1 and (not self.config.depthwise or self.config.basis_dim is None):
            raise ValueError("Widening copies channels, which needs depthwise=true and a basis_dim of its own "
                             "(not following hidden_dim).")
        inputs_split = {f"{name}.weight" for name, module in self.named_modules() if isinstance(module, nn.Linear)}
        state, targets = {}, self.state_dict()
        new_grid = (mine["num_ori"], mine["grid"]) != (theirs["num_ori"], theirs["grid"])
        for name, value in other.state_dict().items():
            if name == "space.grid" and new_grid:  # regridded: this network keeps its own directions
                continue
            target = targets[name].shape
            for dim in range(value.dim()):
                if value.shape[dim] == target[dim]:
                    continue
                if dim == 1 and name in inputs_split:  # a linear layer's copied inputs: split its weights
                    spread = noise * value.float().std().item() if value.numel() > 1 else 0.0
                    offsets = spread * torch.randn(copies, *value.shape, dtype=value.dtype, device=value.device)
                    offsets -= offsets.mean(0)
                    value = torch.cat([value / copies + offset for offset in offsets], dim=dim)
                else:  # channels and hidden units: copies
                    value = torch.cat([value] * copies, dim=dim)
            state[name] = value
        missing, unexpected = self.load_state_dict(state, strict=False)
        assert not unexpected and all(key.startswith("layers.") or key == "space.grid" for key in missing), missing
        for block in self.layers[depth:]:
            block.reset_parameters()
            nn.init.zeros_(block.mlp[-1].weight)
            nn.init.zeros_(block.mlp[-1].bias)

    def forward(self, data: Data) -> tuple[Tensor, Tensor]:
        return self._forward(data, calibrate=False)

    def static_edges(self, num_nodes: int | Sequence[int]) -> Tensor | None:
        r"""Edges that give this network's output for *any* positions: of one graph of ``num_nodes`` nodes,
        or of a batch of graphs of these sizes (nodes numbered consecutively, as in a ``Batch``).

        The fully connected graph (with self-loops if the config has them): without a radius it is the
        graph the network builds itself; with a radius, the smooth window is exactly zero beyond the
        cutoff, so the extra pairs add nothing and the output equals that of the radius graph (up to
        float round-off). Pass it as ``data.edge_index`` where the graph must not depend on the
        positions, e.g. to trace the forward pass for :func:`ponita.models.compile_energy_and_forces`
        or a training step (``compile_step``). ``None`` for a lifted space with a radius, whose points
        are made from the edges.

        Shapes:
            → ``[2, Σ N²]`` (``[2, Σ N(N − 1)]`` without self-loops), or ``None``

        Example:
            >>> model = Ponita(input_dim=1, hidden_dim=8, num_layers=1, num_ori=4, radius=2.0)
            >>> data = Data(pos=torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [5.0, 0, 0]]), x=torch.ones(3, 1))
            >>> fixed = Data(pos=data.pos, x=data.x, edge_index=model.static_edges(3))
            >>> torch.allclose(model(data)[0], model(fixed)[0], atol=1e-6)
            True
            >>> model.static_edges([2, 1]).tolist()  # graphs {0, 1} and {2}, with self-loops: [senders, receivers]
            [[0, 1, 0, 1, 2], [0, 0, 1, 1, 2]]
        """
        if self.config.radius is not None and self.space.points_from_edges:
            return None
        device = self.embedding.weight.device
        if isinstance(num_nodes, int):
            return fully_connected_single(num_nodes, self.config.self_loops, device)
        return fully_connected_sizes(list(num_nodes), self.config.self_loops, device)

    @torch.no_grad()
    def calibrate(self, data: Data) -> None:
        """Rescales every layer's kernel weights so its output keeps the scale of its input.

        The data-dependent initialisation of the reference code, made explicit: call it once on a
        training batch before training. Statistics are pooled over all processes of a distributed
        run, so every rank ends with identical weights. Sets the ``calibrated`` buffer.
        """
        self._forward(data, calibrate=True)
        self.calibrated.fill_(True)
        logger.info("Calibrated the kernel weights of %d layers.", len(self.layers))

    def _forward(self, data: Data, calibrate: bool) -> tuple[Tensor, Tensor]:
        inputs = self._inputs(data)  # checked once, here; everything below trusts it
        space = self.space
        points = space.points(inputs.pos, inputs.x, inputs.vec, inputs.frames, inputs.edge_index, inputs.connect_index)
        graph, perm = receiver_csr_unchecked(points.edge_index, points.pos.shape[0])
        edge_index = points.edge_index[:, perm]  # [2, E], receiver-sorted
        spatial, fibre = space.invariants(points, edge_index)  # [E, (O, (O,)) K], [O, O, K_f] or None
        if inputs.condition is not None:
            spatial = _append_sender_condition(spatial, inputs.condition, points.node_index, edge_index)
        basis = self.basis(spatial)  # [E, (O, (O,)) B]
        if self.window is not None:
            window = self.window(invariants_rn(points.pos, edge_index)[:, 0])  # [E]
            basis = basis * window.view(-1, *([1] * (basis.dim() - 1)))
        fibre_basis = None if fibre is None else self.fibre_basis(fibre)  # [O, O, B]
        kernel_inputs = KernelInputs(basis, graph, fibre_basis)

        h = self.embedding(points.features)  # [M, (O,) C]
        readouts = []
        for index, layer in enumerate(self.layers):
            h = layer(h, kernel_inputs, calibrate=calibrate)
            if self.config.multiple_readouts or index == len(self.layers) - 1:
                readouts.append(self._readout(len(readouts), h))  # [M, (O,) R]
        f = torch.stack(readouts).mean(dim=0)  # [M, (O,) R]
        scalar, vector = space.readout(f, self.config.output_dim, points, inputs.pos.shape[0])  # [N, S], [N, V, n]

        if self.config.task_level == "graph":
            num_graphs = count_graphs(data)
            scalar = scatter_sum(scalar, inputs.batch, num_graphs)  # [G, S]
            vector = scatter_sum(vector, inputs.batch, num_graphs)  # [G, V, n]
        return scalar, vector

    def _readout(self, index: int, h: Tensor) -> Tensor:
        """Readout ``index`` of features ``h`` in the model's dtype, also under autocast.

        Outputs such as energies are sums of many per-point values: rounded to bf16 (3 significant
        digits) they would lose what the features resolve, so the readouts always run in full precision.
        """
        readout = self.readouts[index]
        with torch.autocast(h.device.type, enabled=False):
            return readout(h.to(readout.weight.dtype))

    def _inputs(self, data: Data) -> "_Inputs":
        """The input, checked once and cast to the model's dtype; builds the graph when none is given.

        Shapes are checked on the host; values (finite, indices in range, valid frames, sorted batch)
        with :func:`require`, which never synchronises with a GPU. Given ``edge_index``, nothing here
        waits for the device; building a graph does (its size depends on the data), except the fully
        connected graph of a single molecule (no ``batch``).
        """
        config, dim = self.config, self.dim
        pos = getattr(data, "pos", None)
        if pos is None or pos.dim() != 2 or pos.shape[-1] != dim:
            shape = None if pos is None else list(pos.shape)
            raise ValueError(f"data.pos must have shape [N, {dim}] for space {config.space!r}, got {shape}.")
        num_nodes = pos.shape[0]
        if num_nodes == 0:
            raise ValueError("The input graph is empty (data.pos has 0 nodes); give at least one node.")
        require(torch.isfinite(pos).all(), "data.pos contains NaN or inf; clean the coordinates before calling the model.")
        dtype = self.embedding.weight.dtype
        # Messages are built only on failure (lambdas): formatting the number of nodes into a string would
        # make torch.compile specialise the graph on it.
        x = _field(data, "x", (num_nodes, config.input_dim), dtype, pos,
                   lambda: f"data.x must have shape [N, input_dim] = [{num_nodes}, {config.input_dim}]")
        vec = _field(data, "vec", (num_nodes, config.input_dim_vec, dim), dtype, pos,
                     lambda: f"data.vec must have shape [N, input_dim_vec, {dim}] = [{num_nodes}, "
                     f"{config.input_dim_vec}, {dim}]", f"; the last dimension is the spatial dimension of space "
                     f"{config.space!r}")
        condition = None
        if config.kernel_condition_dim > 0:
            condition = _field(data, "kernel_condition", (num_nodes, config.kernel_condition_dim), dtype, pos,
                               lambda: f"data.kernel_condition must have shape [{num_nodes}, "
                               f"{config.kernel_condition_dim}]")
        batch = getattr(data, "batch", None)
        if batch is not None and batch.shape != (num_nodes,):
            raise ValueError(f"data.batch must have shape [N] = [{num_nodes}], got {list(batch.shape)}.")
        pos = pos.to(dtype)
        edge_index = self._edges(data, pos, batch)  # [2, E]
        frames = None
        key = self.space.frame_field
        if key is not None:
            frames = getattr(data, key, None)
            expected = self.space.frame_shape(num_nodes)
            if frames is None or frames.shape != expected:
                shape = None if frames is None else list(frames.shape)
                raise ValueError(f"space {config.space!r} needs data.{key} of shape {list(expected)}, got {shape}.")
            frames = frames.to(dtype)
        self.space.check(pos, frames, edge_index)
        connect_index = None
        if self.space.points_from_edges and config.connect_lifted == "all":
            connect_index = self._own_graph(data, pos, batch)  # [2, C]
        if batch is None:
            batch = torch.zeros(num_nodes, dtype=torch.long, device=pos.device)
        return _Inputs(pos, x, vec, frames, batch, condition, edge_index, connect_index)

    def _edges(self, data: Data, pos: Tensor, batch: Tensor | None) -> Tensor:
        """``data.edge_index`` checked, or the radius / fully connected graph of the checked ``pos``."""
        num_nodes = pos.shape[0]
        edge_index = data.get("edge_index") if hasattr(data, "get") else getattr(data, "edge_index", None)
        if edge_index is not None:
            if edge_index.dim() != 2 or edge_index.shape[0] != 2:
                raise ValueError(f"data.edge_index must have shape [2, E], got {list(edge_index.shape)}.")
            if edge_index.dtype.is_floating_point or edge_index.dtype in (torch.bool, torch.complex64, torch.complex128):
                raise ValueError(f"data.edge_index must hold integers, got {edge_index.dtype}; use edge_index.long().")
            if edge_index.device != pos.device:
                raise ValueError(f"data.edge_index is on {edge_index.device} but data.pos on {pos.device}.")
            in_range = (edge_index >= 0).all() & (edge_index < num_nodes).all()

            def detail() -> str:
                return (f"edge_index holds node indices outside [0, {num_nodes}): min {int(edge_index.min())}, "
                        f"max {int(edge_index.max())}. Check that it matches the nodes.")

            require(in_range, "edge_index holds node indices outside [0, N); check that it matches the nodes.", detail)
            return edge_index.long()
        return self._own_graph(data, pos, batch)

    def _own_graph(self, data: Data, pos: Tensor, batch: Tensor | None) -> Tensor:
        """The graph the network builds of the checked ``pos``: the radius graph, or fully connected."""
        num_nodes = pos.shape[0]
        self_loops = self.config.self_loops
        if batch is None:
            if self.config.radius is None:
                return fully_connected_single(num_nodes, self_loops, pos.device)
            return radius_graph_unchecked(pos, float(self.config.radius), None, self_loops)
        if batch.dtype.is_floating_point or batch.dtype == torch.bool:
            raise ValueError(f"data.batch must hold integer graph ids, got {batch.dtype}; use batch.long().")
        batch = batch.long()
        require((batch[1:] >= batch[:-1]).all() & (batch[:1] >= 0).all(),
                "data.batch must be sorted (non-decreasing) graph ids >= 0, as torch_geometric's Batch produces it.")
        if self.config.radius is not None:
            return radius_graph_unchecked(pos, float(self.config.radius), batch, self_loops)
        sizes = graph_sizes(data)  # known on the host for a torch_geometric Batch: no sync
        if sizes is not None and sum(sizes) == num_nodes:
            return fully_connected_sizes(sizes, self_loops, pos.device)
        ptr = getattr(data, "ptr", None)
        counts = ptr[1:] - ptr[:-1] if ptr is not None else torch.unique_consecutive(batch, return_counts=True)[1]  # [G]
        return fully_connected_edges(counts, self_loops)

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"space={c.space!r}, num_ori={self.num_ori if self.space.is_fibre_bundle else None}, "
            f"hidden_dim={c.hidden_dim}, num_layers={c.num_layers}, task_level={c.task_level!r}"
        )


class _Inputs(NamedTuple):
    """The checked input of one forward pass, in the model's dtype."""

    pos: Tensor  # [N, n]
    x: Tensor  # [N, F]
    vec: Tensor  # [N, V, n]
    frames: Tensor | None  # [N, n] or [N, n, n]
    batch: Tensor  # [N]
    condition: Tensor | None  # [N, D]
    edge_index: Tensor  # [2, E]
    connect_index: Tensor | None  # [2, C]: the graph along which points made from edges are connected


def _field(data: Data, name: str, shape: tuple, dtype: torch.dtype, pos: Tensor, what: Callable[[], str],
           hint: str = "") -> Tensor:
    """``data.<name>`` checked to have ``shape`` and finite values, in ``dtype``; zeros if ``shape[1]`` is 0.
    ``what()`` says what was expected (called only on failure)."""
    if shape[1] == 0:
        return pos.new_zeros(shape, dtype=dtype)
    value = getattr(data, name, None)
    if value is None or value.shape != shape:
        found = None if value is None else list(value.shape)
        raise ValueError(f"{what()}, got {found}{hint}.")
    require(torch.isfinite(value).all(), f"data.{name} contains NaN or inf.")
    return value.to(dtype)


def _append_sender_condition(spatial: Tensor, condition: Tensor, node_index: Tensor | None, edge_index: Tensor) -> Tensor:
    """Appends each edge's sender ``kernel_condition`` to its attributes, broadcast over orientations."""
    sender = edge_index[0] if node_index is None else node_index[edge_index[0]]  # [E]
    sender_condition = condition[sender]  # [E, D]
    shape = (*spatial.shape[:-1], sender_condition.shape[-1])
    sender_condition = sender_condition.view(-1, *([1] * (spatial.dim() - 2)), shape[-1]).expand(shape)
    return torch.cat([spatial, sender_condition], dim=-1)  # [E, (O, (O,)) K + D]


def _load_legacy_grid(module: nn.Module, state_dict: dict, prefix: str, *args: object) -> None:
    """State dicts written before the space owned its grid kept it as ``grid``; it is now ``space.grid``."""
    if prefix + "grid" in state_dict:
        state_dict[prefix + "space.grid"] = state_dict.pop(prefix + "grid")
