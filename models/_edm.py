r"""An E(3)-equivariant diffusion model of molecules (EDM; Hoogeboom, Satorras, Vignac, Welling, ICML 2022)
with a :class:`ponita.Ponita` denoiser.

A molecule is positions :math:`x` (centre of geometry at the origin) and features :math:`h` = one-hot atom
types times 0.25 and the atomic number times 0.1. Diffusion is variance preserving,
:math:`z_t = \alpha_t [x, h] + \sigma_t \epsilon` with :math:`\gamma(t) = -\log(\alpha_t^2/\sigma_t^2)` from
:class:`~ponita.models.NoiseSchedule`; the position noise lives in the zero-mean subspace. The denoiser
predicts :math:`\epsilon`: for positions from its vector readout (mean removed), for features from its
scalar readout; it sees the noisy positions as the point cloud, the noisy features and :math:`t/T` as
scalars per atom, and optionally :math:`t/T` as a kernel condition. Training minimises
:math:`\lVert \epsilon - \hat\epsilon \rVert^2` at a uniformly drawn step; sampling is EDM's ancestral sampler;
:meth:`EDM.nll` is EDM's evaluation NLL (the variational bound).
"""

import math

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F
from torch_geometric.data import Data

from ponita import Ponita
from ponita.graph import graph_sizes, num_graphs
from ponita.ops import require, scatter_mean

from ._checkpoint import register_model
from ._network_model import NetworkModel
from ._noise_schedule import NoiseSchedule
from ._zoo_config import NetworkModelConfig, statistic

ONE_HOT_SCALE, CHARGE_SCALE = 0.25, 0.1
OBJECTIVES = ("vp", "karras")
SAMPLERS = ("ancestral", "ddim", "heun")
KARRAS_DEFAULT_STEPS = 80
"""Heun steps of the ``karras`` objective's sampler when none are given (159 denoiser calls). On 1000 molecules
of the `quick-karras` generator after 16 epochs (docs/generation.md), 80 steps gave 95.0 % atom / 36.5 % molecule
stability / 79.7 % validity against 93.8 / 30.1 / 78.0 with 40 (the PONITA authors' count) and
94.9 / 36.2 / 77.3 with 100."""
KARRAS_CHURN = 34.0
r"""Stochasticity :math:`S_\mathrm{churn}` of the Heun sampler: each step raises the noise by the factor
:math:`1 + \min(S_\mathrm{churn}/\text{steps}, \sqrt2 - 1)`, so 34 is the cap for any count up to 82 steps (the
authors' code uses 10). On 1000 molecules of the `quick-karras` generator after 9 epochs (docs/generation.md)
the cap (30 at 40 steps) with σ_max = 1 gave 90.3 % atom / 15.4 % molecule stability / 61.5 % validity against
88.0 / 8.4 / 50.4 with 10 and 5 Å."""
KARRAS_SIGMA_MIN, KARRAS_SIGMA_MAX = 0.002, 0.5
"""The Heun sampler's noise range (Å); it starts from Gaussian positions of std σ_max. On 1000 molecules of the
`quick-karras` generator after 13 epochs (docs/generation.md), churn 30: σ_max = 0.5 gave 93.3 % atom / 24.5 %
molecule stability / 74.6 % validity, 1 Å (the PONITA authors' start) 92.1 / 21.5 / 64.3, 0.25 Å
92.6 / 21.9 / 75.1; 5 Å, the start that would match QM9's spread of 1.36 Å per centred coordinate, was worse
still on the 9-epoch generator."""
DEFAULT_SPACING = 2.0
"""Time spacing of respaced sampling (:func:`sampling_times`): 100 quadratically spaced ancestral steps came
closest to EDM's 1000 (docs/generation.md)."""
_LOG_EPSILON = 1e-10  # inside the logarithms of the discrete likelihood, as EDM


@dataclass
class EDMConfig(NetworkModelConfig):
    r"""Everything :class:`EDM` is built from.

    Attributes:
        atomic_numbers: the atom types, in one-hot order (QM9: H, C, N, O, F; the data's).
        size_counts: how many training molecules have each number of atoms (a statistic; sampling draws
            molecule sizes from it).
        steps: diffusion steps :math:`T` of the ``vp`` objective (EDM: 1000).
        noise_precision: the ``vp`` noise schedule's precision :math:`s` (EDM: 1e-5).
        condition_kernel: also give the noise level (:math:`t/T`, or :math:`c_\mathrm{noise}`) to the kernel
            basis (``kernel_condition_dim=1``).
        objective: ``"vp"``, EDM's variance-preserving diffusion with :math:`\epsilon`-prediction at a
            uniform step (``steps``, ``noise_precision``; reproduction), or ``"karras"``, the preconditioned
            denoiser of Karras et al. (2022) as in the PONITA authors' generator code: log-normal noise
            levels, loss weight :math:`(\sigma^2 + \sigma_d^2) / (\sigma \sigma_d)^2`, Heun sampler.
        sigma_data: :math:`\sigma_d` of ``karras`` preconditioning.
        p_mean, p_std: ``karras`` training noise levels, :math:`\ln \sigma \sim \mathcal N(P_\mathrm{mean}, P_\mathrm{std}^2)`.
        network: the :class:`ponita.Ponita` options except the input and output sizes, ``task_level`` and
            ``kernel_condition_dim``, which the model sets.
    """

    atomic_numbers: list[int] = statistic(example=[1])
    size_counts: dict[int, int] = statistic(example={1: 1})
    steps: int = 1000
    noise_precision: float = 1e-5
    condition_kernel: bool = True
    objective: str = "vp"
    sigma_data: float = 1.0
    p_mean: float = -1.2
    p_std: float = 1.2
    network: dict[str, Any] = field(default_factory=dict)


    def __post_init__(self) -> None:
        if not self.atomic_numbers or not self.size_counts or min(self.size_counts) < 1:
            raise ValueError("atomic_numbers and size_counts (molecule sizes ≥ 1 → counts) must not be empty.")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"Unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}.")
        if self.steps < 1 or not 0 < self.noise_precision < 0.5:
            raise ValueError(f"steps must be ≥ 1 and noise_precision lie in (0, 0.5); got {self.steps}, "
                             f"{self.noise_precision}.")
        if not 0 < self.sigma_data < math.inf or not 0 < self.p_std < math.inf or not math.isfinite(self.p_mean):
            raise ValueError(f"sigma_data and p_std must be finite numbers > 0 and p_mean finite; got "
                             f"{self.sigma_data}, {self.p_std}, {self.p_mean}.")
        super().__post_init__()

    @classmethod
    def upgrade_stored(cls, values: dict[str, Any]) -> dict[str, Any]:
        """A config stored before 2026-12 (``precision``, now ``noise_precision``) in today's fields."""
        values = dict(values)
        if "precision" in values:
            values["noise_precision"] = values.pop("precision")
        return values

    def derived_network_options(self) -> dict[str, Any]:
        features = len(self.atomic_numbers) + 1  # one-hot and atomic number
        return {"input_dim": features + 1, "output_dim": features, "output_dim_vec": 1, "input_dim_vec": 0,
                "task_level": "node", "kernel_condition_dim": 1 if self.condition_kernel else 0}


@dataclass(frozen=True)
class Autoguidance:
    r"""Guide a ``karras`` generator's sampler by a weaker version of itself (autoguidance: Karras et al.,
    "Guiding a diffusion model with a bad version of itself", NeurIPS 2024).

    At every noise level :math:`\sigma` within ``sigma_range`` the Heun sampler denoises the positions with
    :math:`D_w = D_\mathrm{guide} + w\,(D - D_\mathrm{guide})` instead of :math:`D`: it moves further in the
    direction in which the generator improves on its guide. The guide is the same recipe trained for less
    time; its errors resemble the generator's, only larger, so their difference points away from them. Each
    guided level costs a second denoiser call. The type features are guided too only with ``features``:
    in the screen of docs/generation.md that collapsed a few molecules per hundred into clusters of fluorine.

    Attributes:
        guide: an :class:`EDM` of the ``karras`` objective over the same elements.
        weight: :math:`w` (1: no guidance). The defaults of ``weight`` and ``sigma_range`` won the screen.
        sigma_range: the noise levels (Å, inclusive) that are guided; outside them :math:`D` alone. The Heun
            sampler's churn raises its first levels above its ``sigma_max`` (by up to :math:`\sqrt 2`).
        features: guide the type features as well as the positions.
    """

    guide: "EDM"
    weight: float = 3.0
    sigma_range: tuple[float, float] = (0.0, 0.25)
    features: bool = False

    def guides(self, sigma: float) -> bool:
        """Whether the denoiser at noise level ``sigma`` (a host number) is guided (the range's ends to rounding)."""
        low, high = self.sigma_range
        return self.weight != 1.0 and low * (1.0 - 1e-12) <= sigma <= high * (1.0 + 1e-12)


@register_model
class EDM(NetworkModel):
    """EDM with a PONITA denoiser: the noise-prediction loss of a batch, and ancestral sampling.

    Shapes:
        a batch holds ``pos`` ``[N, 3]``, ``z`` ``[N]`` (atomic numbers of ``config.atomic_numbers``) and
        ``batch`` ``[N]``.
    """

    config_class = EDMConfig
    description = "an EDM molecule generator"

    def __init__(self, config: EDMConfig) -> None:
        super().__init__()
        self.config = config
        self.num_types = len(config.atomic_numbers)
        self.feature_dim = self.num_types + 1  # one-hot and atomic number
        self.network = Ponita.from_config(config.network_config())
        self.schedule = NoiseSchedule(config.steps, precision=config.noise_precision)
        index = torch.full((max(config.atomic_numbers) + 1,), -1, dtype=torch.long)
        index[config.atomic_numbers] = torch.arange(self.num_types)
        self.register_buffer("type_index", index)  # [Z_max + 1]
        self.register_buffer("atomic_numbers", torch.tensor(config.atomic_numbers, dtype=torch.long))  # [T]
        sizes = sorted(config.size_counts)
        self.register_buffer("sizes", torch.tensor(sizes, dtype=torch.long))  # [K]
        self.register_buffer("size_probabilities", torch.tensor([float(config.size_counts[n]) for n in sizes]))  # [K]

    def features(self, z: Tensor) -> Tensor:
        """EDM's atom features ``[N, T + 1]``: one-hot · 0.25 and atomic number · 0.1."""
        index = self.type_index[z.clamp(0, self.type_index.shape[0] - 1)]  # [N], -1 for unknown elements
        known = ((z >= 0) & (z < self.type_index.shape[0]) & (index >= 0)).all()
        require(known, f"The molecules hold elements other than the model's {self.config.atomic_numbers}.")
        types = torch.arange(self.num_types, device=z.device)  # [T]
        one_hot = (index[:, None] == types).to(self.schedule.gamma_table.dtype)  # F.one_hot reads the indices
        return torch.cat([one_hot * ONE_HOT_SCALE, z[:, None].to(one_hot.dtype) * CHARGE_SCALE], dim=-1)

    def _inputs(self, data: Data) -> Data:
        """The denoiser's input at a noisy state: ``data.pos``, ``data.h`` ``[N, T + 1]``, ``data.t`` ``[N]``."""
        dtype = self.network.embedding.weight.dtype
        time = data.t[:, None].to(dtype)  # [N, 1]
        inputs = Data(pos=data.pos.to(dtype), x=torch.cat([data.h.to(dtype), time], dim=-1), batch=data.batch)
        if self.config.condition_kernel:
            inputs.kernel_condition = time
        return inputs

    def predict_noise(self, pos: Tensor, h: Tensor, t: Tensor, batch: Tensor, num_graphs: int | None = None,
                      edge_index: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Predicted noise of positions ``[N, 3]`` (zero mean per molecule) and features ``[N, T + 1]``.

        Given ``num_graphs`` and the fully connected ``edge_index`` of the batch (:meth:`edges`), the call
        never waits for the device (no host synchronisation); without them it builds both.
        """
        num_graphs = _num_graphs(batch) if num_graphs is None else num_graphs
        inputs = self._inputs(Data(pos=pos, h=h, t=t, batch=batch))
        if edge_index is not None:
            inputs.edge_index = edge_index
        scalar, vector = self.network(inputs)  # [N, F], [N, 1, 3]
        return _centred(vector[:, 0], batch, num_graphs), scalar

    def _batch_edges(self, data: Data) -> Tensor | None:
        """The denoiser's fully connected graph of a batch whose sizes the host knows (no sync), else ``None``
        (the network builds it). A molecule's own ``edge_index`` (its bonds) is never the denoiser's graph."""
        sizes = graph_sizes(data)
        return None if sizes is None else self.edges(sizes)

    def edges(self, sizes: Tensor | list[int]) -> Tensor:
        """The denoiser's graph of a batch of molecules of these sizes: fully connected (with self-loops), ``[2, E]``.

        Built once per batch or sampling run and passed to :meth:`predict_noise` (one host synchronisation here,
        none per denoiser call).
        """
        sizes = sizes.tolist() if isinstance(sizes, Tensor) else list(sizes)
        return self.network.static_edges(sizes)

    def calibration_input(self, data: Data) -> Data:
        """The clean molecules at ``t = 0`` (for :meth:`calibrate`)."""
        zeros = torch.zeros_like(data.pos[:, 0])
        return Data(pos=_centred(data.pos, data.batch, _num_graphs(data.batch, data)), h=self.features(data.z), t=zeros,
                    batch=data.batch)

    @torch.no_grad()
    def calibrate(self, data: Data) -> None:
        """Calibrates the denoiser on clean training molecules (see :meth:`ponita.Ponita.calibrate`)."""
        self.network.calibrate(self._inputs(self.calibration_input(data)))

    def loss(self, data: Data, generator: torch.Generator | None = None) -> Tensor:
        r"""The training loss of a batch, averaged over atoms and dimensions.

        ``"vp"``: EDM's :math:`\lVert \epsilon - \hat\epsilon \rVert^2` at a uniformly drawn step.
        ``"karras"``: :math:`\lambda(\sigma) \lVert D(x + \sigma\epsilon; \sigma) - x \rVert^2` with
        :math:`\ln \sigma \sim \mathcal N(P_\mathrm{mean}, P_\mathrm{std}^2)` per molecule and
        :math:`\lambda = (\sigma^2 + \sigma_d^2) / (\sigma \sigma_d)^2` (:meth:`denoise`).
        """
        if self.config.objective == "karras":
            return self._karras_loss(data, generator)
        batch = data.batch
        num_graphs = _num_graphs(batch, data)
        edge_index = self._batch_edges(data)
        dtype = self.schedule.gamma_table.dtype
        step = torch.randint(0, self.config.steps + 1, (num_graphs,), device=batch.device, generator=generator)
        t = (step.to(dtype) / self.config.steps)[batch]  # [N]
        gamma = self.schedule(t)  # [N]
        alpha, sigma = NoiseSchedule.alpha(gamma)[:, None], NoiseSchedule.sigma(gamma)[:, None]
        x, h = _centred(data.pos.to(dtype), batch, num_graphs), self.features(data.z)
        eps_pos, eps_h = self._noise(x.shape, batch, generator, num_graphs), self._noise(h.shape, None, generator)
        predicted_pos, predicted_h = self.predict_noise(alpha * x + sigma * eps_pos, alpha * h + sigma * eps_h, t, batch,
                                                        num_graphs, edge_index)
        error = torch.cat([predicted_pos - eps_pos.to(predicted_pos.dtype), predicted_h - eps_h.to(predicted_h.dtype)], -1)
        return error.square().mean()

    def denoise(self, pos: Tensor, h: Tensor, sigma: Tensor, batch: Tensor, num_graphs: int,
                edge_index: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r"""The ``karras`` objective's denoiser: estimates of the clean positions ``[N, 3]`` and features ``[N, T + 1]``.

        :math:`D(\tilde x; \sigma) = c_\mathrm{skip} \tilde x + c_\mathrm{out} F(c_\mathrm{in} \tilde x,
        c_\mathrm{noise})` with :math:`c_\mathrm{skip} = \sigma_d^2 / (\sigma^2 + \sigma_d^2)`,
        :math:`c_\mathrm{out} = \sigma \sigma_d / \sqrt{\sigma^2 + \sigma_d^2}`,
        :math:`c_\mathrm{in} = 1 / \sqrt{\sigma^2 + \sigma_d^2}` and :math:`c_\mathrm{noise} = \ln(\sigma) / 4`
        (Karras et al. 2022), for positions and features alike; :math:`F` is the network (its vector readout,
        mean removed, for the positions; its scalar readout for the features), which sees
        :math:`c_\mathrm{noise}` where the ``vp`` objective gives it :math:`t/T`.

        Shapes:
            pos ``[N, 3]`` (zero mean per molecule), h ``[N, T + 1]``, sigma ``[N]`` (noise level of each atom's
            molecule) → ``[N, 3]`` (zero mean), ``[N, T + 1]``
        """
        c_skip, c_out, c_in, c_noise = karras_preconditioning(sigma[:, None], self.config.sigma_data)  # [N, 1] each
        out_pos, out_h = self.predict_noise(c_in * pos, c_in * h, c_noise[:, 0], batch, num_graphs, edge_index)
        dtype = pos.dtype
        return c_skip * pos + c_out * out_pos.to(dtype), c_skip * h + c_out * out_h.to(dtype)

    def _karras_loss(self, data: Data, generator: torch.Generator | None) -> Tensor:
        batch = data.batch
        num_graphs = _num_graphs(batch, data)
        dtype = self.schedule.gamma_table.dtype
        log_sigma = self.config.p_mean + self.config.p_std * torch.randn(
            num_graphs, dtype=dtype, device=batch.device, generator=generator)  # [G]
        sigma = log_sigma.exp()[batch]  # [N]
        x, h = _centred(data.pos.to(dtype), batch, num_graphs), self.features(data.z)
        eps_x, eps_h = self._noise(x.shape, batch, generator, num_graphs), self._noise(h.shape, None, generator)
        noisy_x, noisy_h = x + sigma[:, None] * eps_x, h + sigma[:, None] * eps_h
        denoised_x, denoised_h = self.denoise(noisy_x, noisy_h, sigma, batch, num_graphs,
                                              self._batch_edges(data))
        weight = karras_loss_weight(sigma, self.config.sigma_data)[:, None]  # [N, 1]
        error = torch.cat([denoised_x - x, denoised_h - h], dim=-1)  # [N, 3 + T + 1]
        return (weight * error.square()).mean().to(torch.float32)

    @torch.no_grad()
    def nll(self, data: Data, generator: torch.Generator | None = None) -> Tensor:
        r"""EDM's evaluation NLL of each molecule, :math:`-\log p(x, h, N)` bounded by the variational bound (nats).

        One unbiased draw of the bound, as EDM's ``compute_loss`` in evaluation (``t0_always``):

        .. math::
            -\log p(N) + \mathrm{KL}(q(z_T \mid x, h) \,\|\, \mathcal N(0, I))
            + T\, \tfrac12 \big(e^{\gamma_t - \gamma_s} - 1\big) \lVert \epsilon - \hat\epsilon \rVert^2
            - \log p(x, h \mid z_0)

        with :math:`t` uniform in :math:`\{1, …, T\}`, :math:`s = t - 1`, the position terms over the
        :math:`(N - 1) \cdot 3` dimensions of the zero-mean subspace (with the Gaussian constants of
        :math:`p(x \mid z_0)`), and the discrete likelihoods of the atom types (one-hot × 4, normalised
        over the types) and atomic numbers (× 10) at :math:`t = 0` from :math:`z_0` itself. Positions
        are not rescaled (EDM's ``norm_values[0] = 1``), so no volume term enters. Average over many
        molecules (EDM: the whole test set) for the reported number.

        Returns:
            ``[G]`` NLL per molecule (float64).

        Raises:
            ValueError: for the ``karras`` objective, which has no such bound.
        """
        if self.config.objective != "vp":
            raise ValueError("EDM's NLL (the variational bound) is defined for objective 'vp' only.")
        batch, dtype = data.batch, self.schedule.gamma_table.dtype
        num_graphs = _num_graphs(batch, data)
        steps = self.config.steps
        num_atoms = torch.bincount(batch, minlength=num_graphs)  # [G]
        dof = (num_atoms - 1).to(dtype) * 3  # [G], zero-mean subspace of the positions
        x, h = _centred(data.pos.to(dtype), batch, num_graphs), self.features(data.z)  # [N, 3], [N, T + 1]

        def per_molecule(values: Tensor) -> Tensor:  # [N, ...] -> [G]
            return torch.zeros(num_graphs, dtype=dtype, device=x.device).index_add_(0, batch, values.reshape(len(batch), -1).sum(1))

        # -log p(N) from the training histogram of molecule sizes.
        size_index = torch.searchsorted(self.sizes, num_atoms)  # [G]
        known = (size_index < len(self.sizes)) & (self.sizes[size_index.clamp(max=len(self.sizes) - 1)] == num_atoms)
        log_p_n = torch.where(known, torch.log(self.size_probabilities / self.size_probabilities.sum())[
            size_index.clamp(max=len(self.sizes) - 1)], torch.tensor(-math.inf, dtype=dtype, device=x.device))

        # KL(q(z_T | x, h) || N(0, I)), positions over their (N - 1)·3 dimensions.
        gamma_T = self.schedule(torch.ones(1, dtype=dtype, device=x.device))  # [1]
        alpha_T, sigma_T = NoiseSchedule.alpha(gamma_T), NoiseSchedule.sigma(gamma_T)
        kl_h = per_molecule(-torch.log(sigma_T) + 0.5 * (sigma_T**2 + (alpha_T * h) ** 2) - 0.5)
        kl_x = dof * (-torch.log(sigma_T) + 0.5 * sigma_T**2 - 0.5) + 0.5 * per_molecule((alpha_T * x) ** 2)

        # The t > 0 terms: T times one draw of 0.5 (SNR(s)/SNR(t) - 1) ||eps - eps_hat||^2.
        step = torch.randint(1, steps + 1, (num_graphs,), device=x.device, generator=generator)  # [G]
        t, s = (step.to(dtype) / steps)[batch], ((step - 1).to(dtype) / steps)[batch]  # [N]
        gamma_t, gamma_s = self.schedule(t)[:, None], self.schedule(s)[:, None]
        error = self._noise_error(x, h, gamma_t, t, batch, num_graphs, generator)  # [N]
        weight = torch.expm1(gamma_t[:, 0] - gamma_s[:, 0])  # [N]: SNR(s)/SNR(t) - 1
        diffusion = steps * per_molecule(0.5 * weight * error)

        # -log p(x, h | z_0): Gaussian for the positions, discrete for types and atomic numbers.
        zeros = torch.zeros_like(t)
        gamma_0 = self.schedule(zeros)[:, None]  # [N, 1]
        alpha_0, sigma_0 = NoiseSchedule.alpha(gamma_0), NoiseSchedule.sigma(gamma_0)
        eps_x, eps_h = self._noise(x.shape, batch, generator, num_graphs), self._noise(h.shape, None, generator)
        z0_x, z0_h = alpha_0 * x + sigma_0 * eps_x, alpha_0 * h + sigma_0 * eps_h
        predicted_x, _ = self.predict_noise(z0_x, z0_h, zeros, batch, num_graphs)
        log_sigma_x = 0.5 * gamma_0[0, 0]  # log(sigma_0 / alpha_0)
        nll_x = 0.5 * per_molecule((eps_x - predicted_x.to(dtype)) ** 2) + dof * (log_sigma_x + 0.5 * math.log(2 * math.pi))
        nll_h = -per_molecule(self._log_p_h_given_z0(z0_h, data.z, sigma_0))
        return -log_p_n + kl_x + kl_h + diffusion + nll_x + nll_h

    @torch.no_grad()
    def denoising_error(self, data: Data, noise: float = 0.1, generator: torch.Generator | None = None) -> Tensor:
        r"""RMS error per coordinate of the clean positions estimated in one denoiser call at a low noise level.

        ``"karras"``: noise of standard deviation ``noise`` is added and :math:`D` (:meth:`denoise`) estimates
        the positions. ``"vp"``: the molecules are noised to the step of the schedule whose :math:`\sigma_t / \alpha_t` is closest to
        ``noise`` (in the positions' unit, Å), and :math:`\hat x = (z_t - \sigma_t \hat\epsilon) / \alpha_t`
        is compared with :math:`x`. At 0.1 Å this is where bond lengths, and so stability, are decided
        (EDM's bond-length margins are 3–10 pm); it measures the denoiser whatever its training objective.

        Returns:
            a scalar tensor (float64), the error in Å.
        """
        batch, dtype = data.batch, self.schedule.gamma_table.dtype
        num_graphs = _num_graphs(batch, data)
        edge_index = self._batch_edges(data)
        x, h = _centred(data.pos.to(dtype), batch, num_graphs), self.features(data.z)
        eps_x, eps_h = self._noise(x.shape, batch, generator, num_graphs), self._noise(h.shape, None, generator)
        if self.config.objective == "karras":  # noised by σ = noise itself
            sigma = torch.full((batch.shape[0],), float(noise), dtype=dtype, device=batch.device)  # [N]
            estimate, _ = self.denoise(x + noise * eps_x, h + noise * eps_h, sigma, batch, num_graphs, edge_index)
        else:
            step = torch.argmin((torch.exp(0.5 * self.schedule.gamma_table) - noise).abs())  # σ/α = exp(γ/2)
            t = (step.to(dtype) / self.config.steps).expand(batch.shape[0])  # [N]
            gamma = self.schedule(t)[:, None]
            alpha, sigma = NoiseSchedule.alpha(gamma), NoiseSchedule.sigma(gamma)
            z_x = alpha * x + sigma * eps_x
            predicted_x, _ = self.predict_noise(z_x, alpha * h + sigma * eps_h, t, batch, num_graphs, edge_index)
            estimate = (z_x - sigma * predicted_x.to(dtype)) / alpha
        return (estimate - x).square().mean().sqrt()

    def _noise_error(self, x: Tensor, h: Tensor, gamma: Tensor, t: Tensor, batch: Tensor, num_graphs: int,
                     generator: torch.Generator | None) -> Tensor:
        r""":math:`\lVert \epsilon - \hat\epsilon \rVert^2` per atom ``[N]`` at a noisy state with noise level ``gamma``."""
        alpha, sigma = NoiseSchedule.alpha(gamma), NoiseSchedule.sigma(gamma)
        eps_x, eps_h = self._noise(x.shape, batch, generator, num_graphs), self._noise(h.shape, None, generator)
        predicted_x, predicted_h = self.predict_noise(alpha * x + sigma * eps_x, alpha * h + sigma * eps_h, t, batch,
                                                      num_graphs)
        return (eps_x - predicted_x.to(x.dtype)).square().sum(-1) + (eps_h - predicted_h.to(h.dtype)).square().sum(-1)

    def _log_p_h_given_z0(self, z0_h: Tensor, z: Tensor, sigma_0: Tensor) -> Tensor:
        """EDM's discrete log-likelihood of atom types and atomic numbers given :math:`z_0`, per atom ``[N]``."""

        def log_bin_mass(centred: Tensor, std: Tensor) -> Tensor:  # log P(|N(centred, std)| ≤ 1/2)
            upper, lower = _standard_normal_cdf((centred + 0.5) / std), _standard_normal_cdf((centred - 0.5) / std)
            return torch.log(upper - lower + _LOG_EPSILON)

        estimated_types = z0_h[:, : self.num_types] / ONE_HOT_SCALE  # [N, T], ≈ the one-hot
        log_types = log_bin_mass(estimated_types - 1.0, sigma_0 / ONE_HOT_SCALE)  # [N, T]
        log_types = log_types - torch.logsumexp(log_types, dim=-1, keepdim=True)
        log_type = log_types.gather(1, self.type_index[z][:, None])[:, 0]  # [N]
        estimated_number = z0_h[:, -1] / CHARGE_SCALE  # [N], ≈ the atomic number
        log_number = log_bin_mass(z.to(z0_h.dtype) - estimated_number, sigma_0[:, 0] / CHARGE_SCALE)  # [N]
        return log_type + log_number

    @torch.no_grad()
    def sample(self, sizes: Tensor, steps: int | None = None, generator: torch.Generator | None = None,
               sampler: str | None = None, spacing: float = DEFAULT_SPACING, churn: float = KARRAS_CHURN,
               sigma_max: float = KARRAS_SIGMA_MAX, rho: float = 7.0, churn_range: tuple[float, float] = (0.0, math.inf),
               churn_scale: float = 1.0, guidance: Autoguidance | None = None) -> Data:
        r"""Molecules of the given sizes ``[G]``, drawn with ``sampler`` in ``steps`` steps.

        The ``vp`` objective's samplers run over ``steps`` (default: all :math:`T`) of the reverse process.
        With fewer steps the sampler visits the times :func:`sampling_times` picks (respacing): with
        ``spacing`` :math:`p`, :math:`t_k \approx T (k/K)^p`, so :math:`p > 1` spends more of the steps
        near the data, where bond lengths are settled (``1``: every ``T / steps``-th time). With all
        :math:`T` steps every spacing visits every time, as EDM.
        ``sampler="ancestral"`` (the default) is EDM's: :math:`z_s \sim p(z_s \mid z_t)` with the posterior of the
        forward process given :math:`\hat\epsilon`. ``sampler="ddim"`` is the deterministic DDIM update
        (Song et al. 2021, :math:`\eta = 0`): :math:`z_s = \alpha_s \hat x + \sigma_s \hat\epsilon` with
        :math:`\hat x = (z_t - \sigma_t \hat\epsilon) / \alpha_t`; only the initial noise is random.

        The ``karras`` objective's sampler, ``"heun"`` (its default), is Karras et al.'s Algorithm 2 over
        ``steps`` noise levels (default :data:`KARRAS_DEFAULT_STEPS`; ``2 · steps − 1`` denoiser calls)
        from ``sigma_max`` to 0.002 (:func:`karras_sigmas` with ``rho``): each step whose noise level lies in
        ``churn_range`` (Karras et al.'s :math:`[S_\mathrm{tmin}, S_\mathrm{tmax}]`) first raises the noise by
        the factor :math:`1 + \min(\text{churn} / \text{steps}, \sqrt 2 - 1)` with fresh noise, scaled by
        ``churn_scale`` (:math:`S_\mathrm{noise}`), then takes an Euler step of the probability-flow ODE corrected by
        Heun's second evaluation (none into :math:`\sigma = 0`). The defaults of ``rho``, ``churn_range`` and
        ``churn_scale`` won the A/B of docs/generation.md. ``guidance`` (:class:`Autoguidance`, ``karras`` only)
        guides the denoiser by a weaker generator.

        Returns:
            ``Data(pos [N, 3] Å-like units, z [N] atomic numbers, batch [N])``.

        Raises:
            ValueError: for a sampler of the other objective, steps out of range, or guidance that does not fit.
        """
        karras = self.config.objective == "karras"
        sampler = ("heun" if karras else "ancestral") if sampler is None else sampler
        if sampler not in SAMPLERS:
            raise ValueError(f"Unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}.")
        if karras != (sampler == "heun"):
            raise ValueError(f"Sampler {sampler!r} does not fit objective {self.config.objective!r}: objective 'karras' "
                             "samples with 'heun', objective 'vp' with 'ancestral' or 'ddim'.")
        steps = default_sample_steps(self.config.objective, self.config.steps) if steps is None else steps
        if karras:
            if not churn_scale >= 0:
                raise ValueError(f"churn_scale must be ≥ 0, got {churn_scale}.")
            sigmas, gammas = _heun_levels(steps, sigma_max, rho, churn, churn_range)
            if guidance is not None:
                self._check_guidance(guidance)
        elif guidance is not None:
            raise ValueError("guidance guides the Heun sampler of the 'karras' objective; this generator is 'vp'.")
        elif not 1 <= steps <= self.config.steps:
            raise ValueError(f"steps must lie in 1..{self.config.steps}, got {steps}.")
        device, dtype = self.sizes.device, self.schedule.gamma_table.dtype
        sizes = sizes.to(device)
        num_graphs, num_atoms = len(sizes), int(sizes.sum())
        batch = torch.repeat_interleave(torch.arange(num_graphs, device=device), sizes, output_size=num_atoms)  # [N]
        edge_index = self.edges(sizes)  # [2, E], once for all steps
        pos = self._noise((num_atoms, 3), batch, generator, num_graphs)  # [N, 3], zero mean per molecule
        h = self._noise((num_atoms, self.feature_dim), None, generator)  # [N, T + 1]
        if karras:
            return self._sample_heun(pos, h, batch, num_graphs, edge_index, sigmas, gammas, generator, churn_scale,
                                     guidance)
        times = sampling_times(self.config.steps, steps, spacing).to(device, dtype)  # [steps + 1], 1 … 0
        for t_value, s_value in zip(times[:-1], times[1:]):
            t, s = t_value.expand(num_atoms), s_value.expand(num_atoms)
            gamma_t, gamma_s = self.schedule(t)[:, None], self.schedule(s)[:, None]
            eps_pos, eps_h = self.predict_noise(pos, h, t, batch, num_graphs, edge_index)
            if sampler == "ddim":
                alpha_t, sigma_t = NoiseSchedule.alpha(gamma_t), NoiseSchedule.sigma(gamma_t)
                alpha_s, sigma_s = NoiseSchedule.alpha(gamma_s), NoiseSchedule.sigma(gamma_s)
                pos = alpha_s * (pos - sigma_t * eps_pos.to(dtype)) / alpha_t + sigma_s * eps_pos.to(dtype)
                h = alpha_s * (h - sigma_t * eps_h.to(dtype)) / alpha_t + sigma_s * eps_h.to(dtype)
                continue
            # q(z_t | z_s) = N(alpha_ts z_s, sigma2_ts); the posterior mean and std given the noise estimate.
            sigma2_ts = -torch.expm1(F.softplus(gamma_s) - F.softplus(gamma_t))
            alpha_ts = torch.exp(0.5 * (F.logsigmoid(-gamma_t) - F.logsigmoid(-gamma_s)))
            sigma_t, sigma_s = NoiseSchedule.sigma(gamma_t), NoiseSchedule.sigma(gamma_s)
            scale, std = sigma2_ts / alpha_ts / sigma_t, sigma2_ts.sqrt() * sigma_s / sigma_t
            pos = pos / alpha_ts - scale * eps_pos.to(dtype) + std * self._noise(pos.shape, batch, generator, num_graphs)
            h = h / alpha_ts - scale * eps_h.to(dtype) + std * self._noise(h.shape, None, generator)
        # p(x | z_0): the denoised positions with the small remaining noise; types from z_0's one-hot part.
        zeros = torch.zeros(num_atoms, dtype=dtype, device=device)
        gamma_0 = self.schedule(zeros)[:, None]
        eps_pos, _ = self.predict_noise(pos, h, zeros, batch, num_graphs, edge_index)
        alpha_0, sigma_0 = NoiseSchedule.alpha(gamma_0), NoiseSchedule.sigma(gamma_0)
        pos = (pos - sigma_0 * eps_pos.to(dtype)) / alpha_0
        if sampler == "ancestral":  # EDM samples x ~ N(x̂, σ_0/α_0); DDIM stays deterministic
            pos = pos + sigma_0 / alpha_0 * self._noise(pos.shape, batch, generator, num_graphs)
        types = h[:, : self.num_types].argmax(dim=-1)  # [N]
        return Data(pos=_centred(pos, batch, num_graphs), z=self.atomic_numbers[types], batch=batch)

    @torch.no_grad()
    def resample(self, data: Data, sigma_start: float, steps: int = KARRAS_DEFAULT_STEPS,
                 generator: torch.Generator | None = None, churn: float = KARRAS_CHURN,
                 sigma_max: float = KARRAS_SIGMA_MAX, rho: float = 7.0) -> Data:
        r"""Molecules ``data`` noised to ``sigma_start`` and sampled back by the ``karras`` objective's Heun sampler.

        The sampler of :meth:`sample` with these ``steps``, ``churn``, ``sigma_max`` and ``rho`` runs from its first
        noise level :math:`\sigma_k \le` ``sigma_start``: positions :math:`x + \sigma_k \epsilon` (zero mean per
        molecule) and features :math:`h + \sigma_k \epsilon` (Meng et al.'s SDEdit, 2022). Real molecules sampled back
        from each level tell in which range of noise a generator loses their stability
        (``benchmarks/edm_resample.py``, docs/generation.md).

        Args:
            data: molecules: ``pos`` ``[N, 3]`` in Å, ``z`` ``[N]`` of the model's elements and, for more than one
                molecule, ``batch`` ``[N]`` (sorted molecule ids, as ``Batch.from_data_list`` makes them).
            sigma_start: noise level (Å) in ``[0.002, sigma_max]``.

        Returns:
            ``Data(pos [N, 3], z [N], batch [N])``, the molecules in the order given.

        Raises:
            ValueError: for the ``vp`` objective, ``sigma_start`` outside the sampler's range, or ``pos`` and ``z``
                of other shapes.
        """
        if self.config.objective != "karras":
            raise ValueError("resample runs the Heun sampler of the 'karras' objective; this generator is 'vp'.")
        sigmas, gammas = _heun_levels(steps, sigma_max, rho, churn, (0.0, math.inf))
        if not KARRAS_SIGMA_MIN <= sigma_start <= sigma_max:
            raise ValueError(f"sigma_start must lie in [{KARRAS_SIGMA_MIN}, sigma_max = {sigma_max}] Å, got {sigma_start}.")
        first = int((sigmas > sigma_start * (1.0 + 1e-12)).sum())  # the first level at or below sigma_start
        sigmas, gammas = sigmas[first:], gammas[first:]
        num_atoms = data.z.shape[0]
        if data.z.dim() != 1 or data.pos.shape != (num_atoms, 3):
            raise ValueError(f"need pos [N, 3] and z [N]; got {list(data.pos.shape)} and {list(data.z.shape)}.")
        dtype, device = self.schedule.gamma_table.dtype, self.sizes.device
        batch = getattr(data, "batch", None)
        batch = torch.zeros(num_atoms, dtype=torch.long, device=device) if batch is None else batch.to(device)
        num_graphs = _num_graphs(batch, data)
        sizes = torch.bincount(batch, minlength=num_graphs)  # [G]
        x, h = _centred(data.pos.to(device, dtype), batch, num_graphs), self.features(data.z.to(device))
        start = float(sigmas[0])  # the sampler scales its unit-noise start by the first level
        pos = x / start + self._noise(x.shape, batch, generator, num_graphs)
        h = h / start + self._noise(h.shape, None, generator)
        return self._sample_heun(pos, h, batch, num_graphs, self.edges(sizes), sigmas, gammas, generator, 1.0)

    def _sample_heun(self, pos: Tensor, h: Tensor, batch: Tensor, num_graphs: int, edge_index: Tensor, sigmas: Tensor,
                     gammas: list[float], generator: torch.Generator | None, churn_scale: float,
                     guidance: Autoguidance | None = None) -> Data:
        """Karras et al.'s stochastic Heun sampler from unit noise ``pos``, ``h`` over the noise levels ``sigmas``
        ``[K + 1]`` (float64, on the host) with the churn factors ``gammas`` ``[K]``, optionally guided (see
        :meth:`sample`)."""
        num_atoms = batch.shape[0]
        levels = sigmas.tolist()
        sigmas = sigmas.to(pos.device, pos.dtype)
        pos, h = pos * sigmas[0], h * sigmas[0]

        def slope(pos: Tensor, h: Tensor, sigma: Tensor, level: float) -> tuple[Tensor, Tensor]:
            """dx/dσ of the probability-flow ODE at noise level ``sigma`` (``level`` on the host)."""
            sigma_atoms = sigma.expand(num_atoms)
            denoised_pos, denoised_h = self.denoise(pos, h, sigma_atoms, batch, num_graphs, edge_index)
            if guidance is not None and guidance.guides(level):
                guide_pos, guide_h = guidance.guide.denoise(pos, h, sigma_atoms, batch, num_graphs, edge_index)
                denoised_pos = guide_pos + guidance.weight * (denoised_pos - guide_pos)
                if guidance.features:
                    denoised_h = guide_h + guidance.weight * (denoised_h - guide_h)
            return (pos - denoised_pos) / sigma, (h - denoised_h) / sigma

        for k, gamma in enumerate(gammas):
            sigma, sigma_next = sigmas[k], sigmas[k + 1]
            sigma_hat = sigma * (1.0 + gamma)
            if gamma > 0:  # churn: raise the noise level with fresh noise
                extra = (sigma_hat**2 - sigma**2).sqrt() * churn_scale
                pos = pos + extra * self._noise(pos.shape, batch, generator, num_graphs)
                h = h + extra * self._noise(h.shape, None, generator)
            d_pos, d_h = slope(pos, h, sigma_hat, levels[k] * (1.0 + gamma))
            next_pos, next_h = pos + (sigma_next - sigma_hat) * d_pos, h + (sigma_next - sigma_hat) * d_h
            if levels[k + 1] > 0:  # Heun's correction
                d2_pos, d2_h = slope(next_pos, next_h, sigma_next, levels[k + 1])
                next_pos = pos + (sigma_next - sigma_hat) * 0.5 * (d_pos + d2_pos)
                next_h = h + (sigma_next - sigma_hat) * 0.5 * (d_h + d2_h)
            pos, h = next_pos, next_h
        types = h[:, : self.num_types].argmax(dim=-1)  # [N]
        return Data(pos=_centred(pos, batch, num_graphs), z=self.atomic_numbers[types], batch=batch)

    def _check_guidance(self, guidance: Autoguidance) -> None:
        """Raises ValueError unless ``guidance`` fits this generator."""
        guide = guidance.guide
        if not isinstance(guide, EDM) or guide.config.objective != "karras":
            raise ValueError(f"the guide must be a generator of the 'karras' objective, got "
                             f"{getattr(getattr(guide, 'config', None), 'objective', type(guide).__name__)!r}.")
        if guide.config.atomic_numbers != self.config.atomic_numbers:
            raise ValueError(f"the guide generates elements {guide.config.atomic_numbers}, this generator "
                             f"{self.config.atomic_numbers}; guide it by one trained on the same data.")
        low, high = guidance.sigma_range
        if not math.isfinite(guidance.weight) or not 0 <= low <= high:
            raise ValueError(f"guidance needs a finite weight and 0 ≤ sigma_range[0] ≤ sigma_range[1]; got "
                             f"{guidance.weight}, {guidance.sigma_range}.")

    def _noise(self, shape: torch.Size, batch: Tensor | None, generator: torch.Generator | None,
               num_graphs: int | None = None) -> Tensor:
        """Standard normal noise; centred per molecule when ``batch`` (and ``num_graphs``) are given (positions)."""
        noise = torch.randn(shape, dtype=self.schedule.gamma_table.dtype, device=self.sizes.device, generator=generator)
        return _centred(noise, batch, num_graphs) if batch is not None else noise

    def sample_sizes(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """Molecule sizes ``[num]`` drawn from the training histogram."""
        draws = torch.multinomial(self.size_probabilities, num, replacement=True, generator=generator)
        return self.sizes[draws]


def default_sample_steps(objective: str, steps: int) -> int:
    """Sampler steps when none are asked for: all ``steps`` (:math:`T`) for ``"vp"``, :data:`KARRAS_DEFAULT_STEPS`
    Heun steps for ``"karras"``.

    Example:
        >>> default_sample_steps("vp", 1000), default_sample_steps("karras", 1000)
        (1000, 80)
    """
    return KARRAS_DEFAULT_STEPS if objective == "karras" else steps


def karras_preconditioning(sigma: Tensor, sigma_data: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r""":math:`(c_\mathrm{skip}, c_\mathrm{out}, c_\mathrm{in}, c_\mathrm{noise})` of Karras et al. (2022) at noise levels ``sigma``.

    Example:
        >>> [round(float(c), 4) for c in karras_preconditioning(torch.tensor(1.0), 1.0)]
        [0.5, 0.7071, 0.7071, 0.0]
    """
    total = sigma**2 + sigma_data**2
    return sigma_data**2 / total, sigma * sigma_data / total.sqrt(), 1.0 / total.sqrt(), sigma.log() / 4.0


def karras_loss_weight(sigma: Tensor, sigma_data: float) -> Tensor:
    r"""The loss weight :math:`\lambda(\sigma) = (\sigma^2 + \sigma_d^2) / (\sigma \sigma_d)^2 = 1 / c_\mathrm{out}^2`."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def _heun_levels(steps: int, sigma_max: float, rho: float, churn: float,
                 churn_range: tuple[float, float]) -> tuple[Tensor, list[float]]:
    """The Heun sampler's noise levels ``[steps + 1]`` (float64, on the host) and its churn factor per step
    (``steps`` of them; 0 outside ``churn_range``); arguments as :meth:`EDM.sample`.

    Raises:
        ValueError: for arguments out of range.
    """
    if (steps < 1 or not churn >= 0 or not KARRAS_SIGMA_MIN < sigma_max < math.inf or not rho > 0
            or not 0 <= churn_range[0] <= churn_range[1]):
        raise ValueError(f"need steps ≥ 1, churn ≥ 0, a finite sigma_max > {KARRAS_SIGMA_MIN}, rho > 0 and "
                         f"0 ≤ churn_range[0] ≤ churn_range[1]; got {steps}, {churn}, {sigma_max}, {rho}, {churn_range}.")
    sigmas = karras_sigmas(steps, KARRAS_SIGMA_MIN, sigma_max, rho)  # [steps + 1], … 0
    gamma = min(churn / steps, math.sqrt(2.0) - 1.0)
    return sigmas, [gamma if churn_range[0] <= sigma <= churn_range[1] else 0.0 for sigma in sigmas[:-1].tolist()]


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Tensor:
    r"""The noise levels of Karras et al.'s sampler: :math:`\sigma_i = (\sigma_\max^{1/\rho} + \tfrac{i}{K-1}
    (\sigma_\min^{1/\rho} - \sigma_\max^{1/\rho}))^\rho` for :math:`i < K` = ``steps``, then 0.

    Returns:
        float64 ``[steps + 1]``, decreasing from ``sigma_max`` (``sigma_min`` as well for one step) to 0.

    Example:
        >>> [round(float(s), 4) for s in karras_sigmas(3, 0.002, 1.0)]
        [1.0, 0.0872, 0.002, 0.0]
    """
    ramp = torch.linspace(0.0, 1.0, steps, dtype=torch.float64) if steps > 1 else torch.zeros(1, dtype=torch.float64)
    inverse_max, inverse_min = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    sigmas = (inverse_max + ramp * (inverse_min - inverse_max)) ** rho
    return torch.cat([sigmas, torch.zeros(1, dtype=torch.float64)])


def sampling_times(total: int, steps: int, spacing: float = 1.0) -> Tensor:
    r"""The ``steps + 1`` times, from 1 down to 0, that a sampler of ``steps`` steps visits in a schedule of ``total``.

    Time :math:`k` of :math:`K` = ``steps`` is :math:`i_k / T` with :math:`i_0 = 0` and
    :math:`i_k = \max\big(\mathrm{round}(T (k/K)^p),\, i_{k-1} + 1\big)` (:math:`p` = ``spacing``,
    :math:`T` = ``total``): every step moves at least one step of the schedule, and ``steps = total``
    visits them all whatever :math:`p`. :math:`p = 1` is uniform respacing; :math:`p > 1` is denser
    near :math:`t = 0`.

    Returns:
        float64 ``[steps + 1]``, multiples of :math:`1/T`, strictly decreasing from 1 to 0.

    Raises:
        ValueError: unless ``1 ≤ steps ≤ total`` and ``spacing`` is a finite number > 0.

    Example:
        >>> [round(float(t) * 1000) for t in sampling_times(1000, 5, spacing=2.0)]
        [1000, 640, 360, 160, 40, 0]
        >>> bool((sampling_times(1000, 1000, spacing=2.0) * 1000).round().eq(torch.arange(1000, -1, -1)).all())
        True
    """
    if not 1 <= steps <= total or not 0 < spacing < math.inf:
        raise ValueError(f"need 1 ≤ steps ≤ {total} and a finite spacing > 0; got steps={steps}, spacing={spacing}.")
    indices = [0]
    for k in range(1, steps + 1):
        indices.append(max(round(total * (k / steps) ** spacing), indices[-1] + 1))
    return torch.tensor(indices[::-1], dtype=torch.float64) / total


def _standard_normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _centred(pos: Tensor, batch: Tensor, num_graphs: int | None = None) -> Tensor:
    """Positions with each molecule's centre of geometry moved to the origin (``num_graphs``: found if not given)."""
    num_graphs = _num_graphs(batch) if num_graphs is None else num_graphs
    return pos - scatter_mean(pos, batch, num_graphs)[batch]


def _num_graphs(batch: Tensor, data: Data | None = None) -> int:
    """The number of molecules of a batch: known on the host for a ``Batch`` (:func:`num_graphs`), else from ``batch``."""
    return num_graphs(data) if data is not None else int(batch.max()) + 1
