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
from ponita.ops import scatter_mean

from ._checkpoint import register_model
from ._network_model import NetworkModel
from ._noise_schedule import NoiseSchedule

ONE_HOT_SCALE, CHARGE_SCALE = 0.25, 0.1
SAMPLERS = ("ancestral", "ddim")
DEFAULT_SPACING = 2.0
"""Time spacing of respaced sampling (:func:`sampling_times`): 100 quadratically spaced ancestral steps came
closest to EDM's 1000 (docs/generation.md)."""
_LOG_EPSILON = 1e-10  # inside the logarithms of the discrete likelihood, as EDM


@dataclass
class EDMConfig:
    """Constructor arguments of :class:`EDM`.

    Attributes:
        atomic_numbers: the atom types, in one-hot order (QM9: H, C, N, O, F).
        size_counts: how many training molecules have each number of atoms (a statistic; sampling draws
            molecule sizes from it).
        steps: diffusion steps :math:`T`.
        precision: the schedule's precision :math:`s`.
        condition_kernel: also give :math:`t/T` to the kernel basis (``kernel_condition_dim=1``).
        network: the :class:`ponita.Ponita` options except the input/output sizes and ``task_level``.
    """

    atomic_numbers: list[int]
    size_counts: dict[int, int]
    steps: int = 1000
    precision: float = 1e-5
    condition_kernel: bool = True
    network: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.atomic_numbers or not self.size_counts or min(self.size_counts) < 1:
            raise ValueError("atomic_numbers and size_counts (molecule sizes ≥ 1 → counts) must not be empty.")


@register_model
class EDM(NetworkModel):
    """EDM with a PONITA denoiser: the noise-prediction loss of a batch, and ancestral sampling.

    Shapes:
        a batch holds ``pos`` ``[N, 3]``, ``z`` ``[N]`` (atomic numbers of ``config.atomic_numbers``) and
        ``batch`` ``[N]``.
    """

    config_class = EDMConfig

    def __init__(self, config: EDMConfig) -> None:
        super().__init__()
        self.config = config
        self.num_types = len(config.atomic_numbers)
        self.feature_dim = self.num_types + 1  # one-hot and atomic number
        self.network = Ponita(
            input_dim=self.feature_dim + 1, output_dim=self.feature_dim, output_dim_vec=1, task_level="node",
            kernel_condition_dim=1 if config.condition_kernel else 0, **config.network,
        )
        self.schedule = NoiseSchedule(config.steps, precision=config.precision)
        index = torch.full((max(config.atomic_numbers) + 1,), -1, dtype=torch.long)
        index[config.atomic_numbers] = torch.arange(self.num_types)
        self.register_buffer("type_index", index)  # [Z_max + 1]
        self.register_buffer("atomic_numbers", torch.tensor(config.atomic_numbers, dtype=torch.long))  # [T]
        sizes = sorted(config.size_counts)
        self.register_buffer("sizes", torch.tensor(sizes, dtype=torch.long))  # [K]
        self.register_buffer("size_probabilities", torch.tensor([float(config.size_counts[n]) for n in sizes]))  # [K]

    def features(self, z: Tensor) -> Tensor:
        """EDM's atom features ``[N, T + 1]``: one-hot · 0.25 and atomic number · 0.1."""
        one_hot = F.one_hot(self.type_index[z], self.num_types).to(self.schedule.gamma_table.dtype)
        return torch.cat([one_hot * ONE_HOT_SCALE, z[:, None].to(one_hot.dtype) * CHARGE_SCALE], dim=-1)

    def _inputs(self, data: Data) -> Data:
        """The denoiser's input at a noisy state: ``data.pos``, ``data.h`` ``[N, T + 1]``, ``data.t`` ``[N]``."""
        dtype = self.network.embedding.weight.dtype
        time = data.t[:, None].to(dtype)  # [N, 1]
        inputs = Data(pos=data.pos.to(dtype), x=torch.cat([data.h.to(dtype), time], dim=-1), batch=data.batch)
        if self.config.condition_kernel:
            inputs.kernel_condition = time
        return inputs

    def predict_noise(self, pos: Tensor, h: Tensor, t: Tensor, batch: Tensor) -> tuple[Tensor, Tensor]:
        """Predicted noise of positions ``[N, 3]`` (zero mean per molecule) and features ``[N, T + 1]``."""
        scalar, vector = self.network(self._inputs(Data(pos=pos, h=h, t=t, batch=batch)))  # [N, F], [N, 1, 3]
        eps_pos = vector[:, 0] - scatter_mean(vector[:, 0], batch, int(batch.max()) + 1)[batch]
        return eps_pos, scalar

    def calibration_input(self, data: Data) -> Data:
        """The clean molecules at ``t = 0`` (for :meth:`calibrate`)."""
        zeros = torch.zeros_like(data.pos[:, 0])
        return Data(pos=_centred(data.pos, data.batch), h=self.features(data.z), t=zeros, batch=data.batch)

    @torch.no_grad()
    def calibrate(self, data: Data) -> None:
        """Calibrates the denoiser on clean training molecules (see :meth:`ponita.Ponita.calibrate`)."""
        self.network.calibrate(self._inputs(self.calibration_input(data)))

    def loss(self, data: Data, generator: torch.Generator | None = None) -> Tensor:
        r"""EDM's training loss: :math:`\lVert \epsilon - \hat\epsilon \rVert^2` averaged over atoms and dimensions."""
        batch = data.batch
        num_graphs = int(batch.max()) + 1
        dtype = self.schedule.gamma_table.dtype
        step = torch.randint(0, self.config.steps + 1, (num_graphs,), device=batch.device, generator=generator)
        t = (step.to(dtype) / self.config.steps)[batch]  # [N]
        gamma = self.schedule(t)  # [N]
        alpha, sigma = NoiseSchedule.alpha(gamma)[:, None], NoiseSchedule.sigma(gamma)[:, None]
        x, h = _centred(data.pos.to(dtype), batch), self.features(data.z)
        eps_pos, eps_h = self._noise(x.shape, batch, generator), self._noise(h.shape, None, generator)
        predicted_pos, predicted_h = self.predict_noise(alpha * x + sigma * eps_pos, alpha * h + sigma * eps_h, t, batch)
        error = torch.cat([predicted_pos - eps_pos.to(predicted_pos.dtype), predicted_h - eps_h.to(predicted_h.dtype)], -1)
        return error.square().mean()

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
        """
        batch, dtype = data.batch, self.schedule.gamma_table.dtype
        num_graphs = int(batch.max()) + 1
        steps = self.config.steps
        num_atoms = torch.bincount(batch, minlength=num_graphs)  # [G]
        dof = (num_atoms - 1).to(dtype) * 3  # [G], zero-mean subspace of the positions
        x, h = _centred(data.pos.to(dtype), batch), self.features(data.z)  # [N, 3], [N, T + 1]

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
        error = self._noise_error(x, h, gamma_t, t, batch, generator)  # [N]
        weight = torch.expm1(gamma_t[:, 0] - gamma_s[:, 0])  # [N]: SNR(s)/SNR(t) - 1
        diffusion = steps * per_molecule(0.5 * weight * error)

        # -log p(x, h | z_0): Gaussian for the positions, discrete for types and atomic numbers.
        zeros = torch.zeros_like(t)
        gamma_0 = self.schedule(zeros)[:, None]  # [N, 1]
        alpha_0, sigma_0 = NoiseSchedule.alpha(gamma_0), NoiseSchedule.sigma(gamma_0)
        eps_x, eps_h = self._noise(x.shape, batch, generator), self._noise(h.shape, None, generator)
        z0_x, z0_h = alpha_0 * x + sigma_0 * eps_x, alpha_0 * h + sigma_0 * eps_h
        predicted_x, _ = self.predict_noise(z0_x, z0_h, zeros, batch)
        log_sigma_x = 0.5 * gamma_0[0, 0]  # log(sigma_0 / alpha_0)
        nll_x = 0.5 * per_molecule((eps_x - predicted_x.to(dtype)) ** 2) + dof * (log_sigma_x + 0.5 * math.log(2 * math.pi))
        nll_h = -per_molecule(self._log_p_h_given_z0(z0_h, data.z, sigma_0))
        return -log_p_n + kl_x + kl_h + diffusion + nll_x + nll_h

    def _noise_error(self, x: Tensor, h: Tensor, gamma: Tensor, t: Tensor, batch: Tensor,
                     generator: torch.Generator | None) -> Tensor:
        r""":math:`\lVert \epsilon - \hat\epsilon \rVert^2` per atom ``[N]`` at a noisy state with noise level ``gamma``."""
        alpha, sigma = NoiseSchedule.alpha(gamma), NoiseSchedule.sigma(gamma)
        eps_x, eps_h = self._noise(x.shape, batch, generator), self._noise(h.shape, None, generator)
        predicted_x, predicted_h = self.predict_noise(alpha * x + sigma * eps_x, alpha * h + sigma * eps_h, t, batch)
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
               sampler: str = "ancestral", spacing: float = DEFAULT_SPACING) -> Data:
        r"""Molecules of the given sizes ``[G]`` over ``steps`` (default: all :math:`T`) of the reverse process.

        With fewer steps the sampler visits the times :func:`sampling_times` picks (respacing): with
        ``spacing`` :math:`p`, :math:`t_k \approx T (k/K)^p`, so :math:`p > 1` spends more of the steps
        near the data, where bond lengths are settled (``1``: every ``T / steps``-th time). With all
        :math:`T` steps every spacing visits every time, as EDM.
        ``sampler="ancestral"`` is EDM's: :math:`z_s \sim p(z_s \mid z_t)` with the posterior of the
        forward process given :math:`\hat\epsilon`. ``sampler="ddim"`` is the deterministic DDIM update
        (Song et al. 2021, :math:`\eta = 0`): :math:`z_s = \alpha_s \hat x + \sigma_s \hat\epsilon` with
        :math:`\hat x = (z_t - \sigma_t \hat\epsilon) / \alpha_t`; only the initial noise is random.

        Returns:
            ``Data(pos [N, 3] Å-like units, z [N] atomic numbers, batch [N])``.
        """
        steps = self.config.steps if steps is None else steps
        if not 1 <= steps <= self.config.steps:
            raise ValueError(f"steps must lie in 1..{self.config.steps}, got {steps}.")
        if sampler not in SAMPLERS:
            raise ValueError(f"Unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}.")
        device, dtype = self.sizes.device, self.schedule.gamma_table.dtype
        times = sampling_times(self.config.steps, steps, spacing).to(device, dtype)  # [steps + 1], 1 … 0
        batch = torch.repeat_interleave(torch.arange(len(sizes), device=device), sizes.to(device))  # [N]
        num_atoms = batch.shape[0]
        pos = self._noise((num_atoms, 3), batch, generator)  # [N, 3], zero mean per molecule
        h = self._noise((num_atoms, self.feature_dim), None, generator)  # [N, T + 1]
        for t_value, s_value in zip(times[:-1], times[1:]):
            t, s = t_value.expand(num_atoms), s_value.expand(num_atoms)
            gamma_t, gamma_s = self.schedule(t)[:, None], self.schedule(s)[:, None]
            eps_pos, eps_h = self.predict_noise(pos, h, t, batch)
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
            pos = pos / alpha_ts - scale * eps_pos.to(dtype) + std * self._noise(pos.shape, batch, generator)
            h = h / alpha_ts - scale * eps_h.to(dtype) + std * self._noise(h.shape, None, generator)
        # p(x | z_0): the denoised positions with the small remaining noise; types from z_0's one-hot part.
        zeros = torch.zeros(num_atoms, dtype=dtype, device=device)
        gamma_0 = self.schedule(zeros)[:, None]
        eps_pos, _ = self.predict_noise(pos, h, zeros, batch)
        alpha_0, sigma_0 = NoiseSchedule.alpha(gamma_0), NoiseSchedule.sigma(gamma_0)
        pos = (pos - sigma_0 * eps_pos.to(dtype)) / alpha_0
        if sampler == "ancestral":  # EDM samples x ~ N(x̂, σ_0/α_0); DDIM stays deterministic
            pos = pos + sigma_0 / alpha_0 * self._noise(pos.shape, batch, generator)
        types = h[:, : self.num_types].argmax(dim=-1)  # [N]
        return Data(pos=_centred(pos, batch), z=self.atomic_numbers[types], batch=batch)

    def _noise(self, shape: torch.Size, batch: Tensor | None, generator: torch.Generator | None) -> Tensor:
        """Standard normal noise; centred per molecule when ``batch`` is given (positions)."""
        noise = torch.randn(shape, dtype=self.schedule.gamma_table.dtype, device=self.sizes.device, generator=generator)
        return _centred(noise, batch) if batch is not None else noise

    def sample_sizes(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """Molecule sizes ``[num]`` drawn from the training histogram."""
        draws = torch.multinomial(self.size_probabilities, num, replacement=True, generator=generator)
        return self.sizes[draws]


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


def _centred(pos: Tensor, batch: Tensor) -> Tensor:
    """Positions with each molecule's centre of geometry moved to the origin."""
    return pos - scatter_mean(pos, batch, int(batch.max()) + 1)[batch]
