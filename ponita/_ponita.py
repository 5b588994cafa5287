r"""The PONITA network: one class for R^n, R^n×S^(n−1) (point cloud or fibre bundle) and SE(n).

Bekkers, Vadgama, Hesselink, van der Linden, Romero, "Fast, Expressive SE(n) Equivariant Networks
through Weight-Sharing in Position-Orientation Space", ICLR 2024 (arXiv 2310.02970).

Forward pass: graph → points of the space → bi-invariant attributes → kernel basis (once, shared
by all layers) → lifted and embedded input → ConvNeXt layers (with readouts) → scalar and vector
outputs per node or per graph.
"""

import dataclasses
import logging
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ponita._spaces import SPACES, edge_distance, make_space
from ponita.graph import fully_connected_graph, radius_graph
from ponita.nn import ConvNextBlock, FibreBundleConv, KernelBasis, PointCloudConv, PolynomialCutoff
from ponita.ops import receiver_csr, scatter_sum

logger = logging.getLogger(__name__)

TASK_LEVELS = ("node", "graph")
DEFAULT_NUM_ORI = 16


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

    def __post_init__(self) -> None:
        """Checks the options once, where they enter; the network then trusts them."""
        config = self
        if config.space not in SPACES:
            raise ValueError(f"Unknown space {config.space!r}; choose one of {SPACES}.")
        if config.task_level not in TASK_LEVELS:
            raise ValueError(f"Unknown task_level {config.task_level!r}; choose one of {TASK_LEVELS}.")
        is_bundle = config.space in ("R2xS1", "R3xS2", "SE2", "SE3")
        if not is_bundle and config.num_ori is not None:
            raise ValueError(
                f"space {config.space!r} is a point cloud without an orientation grid; leave num_ori=None "
                "or choose a fibre-bundle space (R2xS1, R3xS2, SE2, SE3)."
            )
        if is_bundle and config.num_ori is not None and config.num_ori < 1:
            raise ValueError(f"num_ori must be ≥ 1 for the fibre bundle {config.space!r}, got {config.num_ori}.")
        if config.space in ("R2", "R3") and (config.input_dim_vec or config.output_dim_vec):
            raise ValueError(
                f"space {config.space!r} has only scalar features; for vector inputs or outputs use "
                f"'R{config.space[1]}xS{int(config.space[1]) - 1}' or another space with orientations."
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
        self.space = make_space(config.space, config.complete_invariants, config.separable, config.grid)
        self.dim = self.space.dim
        hidden_dim = config.hidden_dim
        basis_dim = config.basis_dim or hidden_dim
        self.num_ori = (config.num_ori or DEFAULT_NUM_ORI) if self.space.is_fibre_bundle else 1
        # float64 whatever the default dtype, so .double() gives the exact grid; cast in forward
        self.register_buffer("grid", self.space.grid(self.num_ori))  # [O, n] or [O, n, n], or None
        self.register_buffer("calibrated", torch.tensor(False))

        num_invariants = self.space.num_invariants + config.kernel_condition_dim
        self.basis = KernelBasis(num_invariants, hidden_dim, basis_dim, config.degree)
        self.fibre_basis = (
            KernelBasis(self.space.num_fibre_invariants, hidden_dim, basis_dim, config.degree)
            if self.space.num_fibre_invariants
            else None
        )
        self.window = PolynomialCutoff(config.radius) if config.radius is not None else None

        lifted_dim = config.input_dim + config.input_dim_vec * self.space.channels_per_vector
        self.embedding = nn.Linear(lifted_dim, hidden_dim, bias=False)
        self.layers = nn.ModuleList(
            ConvNextBlock(self._conv(hidden_dim, basis_dim), config.widening_factor, config.layer_scale)
            for _ in range(config.num_layers)
        )
        readout_dim = config.output_dim + config.output_dim_vec * self.space.channels_per_vector
        num_readouts = config.num_layers if config.multiple_readouts else 1
        self.readouts = nn.ModuleList(nn.Linear(hidden_dim, readout_dim) for _ in range(num_readouts))
        self.reset_parameters()

    @classmethod
    def from_config(cls, config: PonitaConfig) -> "Ponita":
        """A new network with the architecture ``config`` (fresh weights): ``Ponita.from_config(model.config)``.

        Example:
            >>> model = Ponita(input_dim=2, hidden_dim=8, num_layers=1, num_ori=4)
            >>> Ponita.from_config(model.config).config == model.config
            True
        """
        return cls(**dataclasses.asdict(config))

    def _conv(self, hidden_dim: int, basis_dim: int) -> PointCloudConv | FibreBundleConv:
        config = self.config
        if self.space.is_fibre_bundle:
            return FibreBundleConv(hidden_dim, basis_dim, separable=config.separable, depthwise=config.depthwise)
        return PointCloudConv(hidden_dim, basis_dim, depthwise=config.depthwise)

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

    def forward(self, data: Data) -> tuple[Tensor, Tensor]:
        return self._forward(data, calibrate=False)

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
        pos, x, vec, batch, condition = self._inputs(data)
        num_nodes = pos.shape[0]
        edge_index = self._edges(data, pos, batch)  # [2, E]

        grid = self.grid.to(pos.dtype) if self.grid is not None else None
        points = self.space.points(pos, x, vec, self._frames(data, pos), edge_index, grid)
        graph, perm = receiver_csr(points.edge_index, points.pos.shape[0])
        edge_index = points.edge_index[:, perm]  # [2, E], receiver-sorted
        spatial, fibre = self.space.invariants(points, edge_index, grid)  # [E, (O, (O,)) K], [O, O, K_f]
        if condition is not None:
            sender_condition = condition[edge_index[0]] if points.node_index is None else (
                condition[points.node_index[edge_index[0]]]
            )  # [E, D]
            shape = (*spatial.shape[:-1], sender_condition.shape[-1])
            sender_condition = sender_condition.view(-1, *([1] * (spatial.dim() - 2)), shape[-1]).expand(shape)
            spatial = torch.cat([spatial, sender_condition], dim=-1)
        basis = self.basis(spatial)  # [E, (O, (O,)) B]
        if self.window is not None:
            window = self.window(edge_distance(points.pos, edge_index))  # [E]
            basis = basis * window.view(-1, *([1] * (basis.dim() - 1)))
        fibre_basis = self.fibre_basis(fibre) if self.fibre_basis is not None else None  # [O, O, B]
        conv_args = (basis, fibre_basis, graph) if self.space.is_fibre_bundle else (basis, graph)

        h = self.embedding(points.features)  # [M, (O,) C]
        readouts = []
        for index, layer in enumerate(self.layers):
            h = layer(h, *conv_args, calibrate=calibrate)
            if self.config.multiple_readouts or index == len(self.layers) - 1:
                readouts.append(self.readouts[len(readouts)](h))  # [M, (O,) R]
        f = torch.stack(readouts).mean(dim=0)  # [M, (O,) R]
        scalar, vector = self.space.readout(f, self.config.output_dim, points, num_nodes, grid)

        if self.config.task_level == "graph":
            num_graphs = int(batch.max()) + 1
            scalar = scatter_sum(scalar, batch, num_graphs)  # [G, S]
            vector = scatter_sum(vector, batch, num_graphs)  # [G, V, n]
        return scalar, vector

    def _edges(self, data: Data, pos: Tensor, batch: Tensor) -> Tensor:
        edge_index = data.get("edge_index") if hasattr(data, "get") else getattr(data, "edge_index", None)
        if edge_index is not None:
            if edge_index.dim() != 2 or edge_index.shape[0] != 2:
                raise ValueError(f"data.edge_index must have shape [2, E], got {list(edge_index.shape)}.")
            return edge_index
        if self.config.radius is not None:
            return radius_graph(pos, self.config.radius, batch, self_loops=self.config.self_loops)
        return fully_connected_graph(batch, pos.shape[0], self_loops=self.config.self_loops)

    def _frames(self, data: Data, pos: Tensor) -> Tensor | None:
        """Checked per-node orientations (``data.ori``) or rotations (``data.rot``), if the space needs them."""
        key = self.space.frame_key
        if key is None:
            return None
        num_nodes, dim = pos.shape
        frames = getattr(data, key, None)
        expected = (num_nodes, dim) if key == "ori" else (num_nodes, dim, dim)
        if frames is None or frames.shape != expected:
            shape = None if frames is None else list(frames.shape)
            raise ValueError(f"space {self.config.space!r} needs data.{key} of shape {list(expected)}, got {shape}.")
        frames = frames.to(pos.dtype)
        tolerance = 1e-3 if pos.dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-8
        if key == "ori":
            bad = ~torch.isfinite(frames).all(-1) | ((frames.norm(dim=-1) - 1.0).abs() > tolerance)  # [N]
            fix = "normalise them, ori / ori.norm(dim=-1, keepdim=True)"
        else:
            identity = torch.eye(dim, dtype=pos.dtype, device=pos.device)
            orthogonal = (frames.transpose(-1, -2) @ frames - identity).abs().amax(dim=(-1, -2)) <= tolerance
            bad = ~torch.isfinite(frames).flatten(1).all(-1) | ~orthogonal | (torch.linalg.det(frames) <= 0)  # [N]
            fix = "give rotation matrices (orthonormal columns, determinant +1)"
        if bad.any():
            index = int(bad.nonzero()[0])
            raise ValueError(f"data.{key}[{index}] is not a valid {'unit vector' if key == 'ori' else 'rotation'}; {fix}.")
        return frames

    def _inputs(self, data: Data) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
        """Checked ``pos, x, vec, batch, kernel_condition`` in the model's dtype."""
        config, dim = self.config, self.dim
        pos = getattr(data, "pos", None)
        if pos is None or pos.dim() != 2 or pos.shape[-1] != dim:
            shape = None if pos is None else list(pos.shape)
            raise ValueError(f"data.pos must have shape [N, {dim}] for space {config.space!r}, got {shape}.")
        num_nodes = pos.shape[0]
        if num_nodes == 0:
            raise ValueError("The input graph is empty (data.pos has 0 nodes); give at least one node.")
        if not torch.isfinite(pos).all():
            raise ValueError("data.pos contains NaN or inf; clean the coordinates before calling the model.")
        dtype = self.embedding.weight.dtype
        x = getattr(data, "x", None)
        if config.input_dim > 0:
            if x is None or x.shape != (num_nodes, config.input_dim):
                shape = None if x is None else list(x.shape)
                raise ValueError(f"data.x must have shape [N, input_dim] = [{num_nodes}, {config.input_dim}], got {shape}.")
            if not torch.isfinite(x).all():
                raise ValueError("data.x contains NaN or inf.")
            x = x.to(dtype)
        else:
            x = pos.new_zeros(num_nodes, 0, dtype=dtype)
        vec = getattr(data, "vec", None)
        if config.input_dim_vec > 0:
            expected = (num_nodes, config.input_dim_vec, dim)
            if vec is None or vec.shape != expected:
                shape = None if vec is None else list(vec.shape)
                raise ValueError(
                    f"data.vec must have shape [N, input_dim_vec, {dim}] = {list(expected)}, got {shape}; "
                    f"the last dimension is the spatial dimension of space {config.space!r}."
                )
            if not torch.isfinite(vec).all():
                raise ValueError("data.vec contains NaN or inf.")
            vec = vec.to(dtype)
        else:
            vec = pos.new_zeros(num_nodes, 0, dim, dtype=dtype)
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = torch.zeros(num_nodes, dtype=torch.long, device=pos.device)
        elif batch.shape != (num_nodes,):
            raise ValueError(f"data.batch must have shape [N] = [{num_nodes}], got {list(batch.shape)}.")
        condition = None
        if config.kernel_condition_dim > 0:
            condition = getattr(data, "kernel_condition", None)
            expected = (num_nodes, config.kernel_condition_dim)
            if condition is None or condition.shape != expected:
                shape = None if condition is None else list(condition.shape)
                raise ValueError(f"data.kernel_condition must have shape {list(expected)}, got {shape}.")
            condition = condition.to(dtype)
        return pos.to(dtype), x, vec, batch, condition

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"space={c.space!r}, num_ori={self.num_ori if self.space.is_fibre_bundle else None}, "
            f"hidden_dim={c.hidden_dim}, num_layers={c.num_layers}, task_level={c.task_level!r}"
        )
