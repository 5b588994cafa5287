r"""Muon for a network's hidden weight matrices and Adam(W) for its other parameters, as one optimiser.

Muon (Jordan et al. 2024; Liu et al. 2025, "Muon is scalable") replaces the update of a weight matrix by
the orthogonalised momentum: with :math:`M_t = \mu M_{t-1} + (1 - \mu) G_t` and the Nesterov look-ahead
:math:`N_t = (1 - \mu) G_t + \mu M_t`,

.. math::
    W_t = W_{t-1} (1 - \eta \lambda) - \eta \, 0.2 \sqrt{\max(m, n)} \; \mathrm{NS}_5(N_t),

where :math:`\mathrm{NS}_5(X) \approx U V^\top` (:math:`X = U S V^\top`) is five quintic Newton–Schulz
iterations and :math:`0.2 \sqrt{\max(m, n)}` gives the update the RMS of an Adam update, so the learning
rate :math:`\eta` and decay :math:`\lambda` of Adam carry over. Every singular direction of the
gradient moves at the same speed, which on rMD17 reaches a given force error in less than half the
epochs of Adam (docs/potentials.md). Matrices of one shape (up to transposition) are orthogonalised
together (batched matrix products), so the step costs a few small GEMMs per shape, not per parameter.

Vectors, scalars and the thin input and output matrices of a network (smaller side below
``min_dim``: atom-type embeddings, readouts) are updated by Adam, as the Muon authors recommend.
"""

import math
from collections import defaultdict
from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.optim.adam import adam as adam_update

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
"""Quintic Newton–Schulz coefficients of Jordan et al. (maximal slope at zero)."""


def has_fused_adam(parameters: Iterable[Tensor]) -> bool:
    """Whether PyTorch's fused Adam kernel can update all ``parameters`` (CPU or CUDA tensors)."""
    return all(p.device.type in ("cpu", "cuda") for p in parameters)


def newton_schulz(matrices: Tensor, steps: int = 5, eps: float = 1e-7, dtype: torch.dtype = torch.float32) -> Tensor:
    r"""Approximately orthogonalises each matrix of a stack: :math:`U S V^\top \mapsto U S' V^\top`.

    Quintic iteration :math:`X \leftarrow a X + (b A + c A^2) X` with :math:`A = X X^\top`, started from
    :math:`X / \lVert X \rVert_F` on the wide orientation (``m ≤ n``), in ``dtype`` (float32: on the CPU
    as fast as bfloat16 at these sizes); the singular values end in roughly [0.7, 1.2], which works as well
    as exact orthogonalisation (Jordan et al.).

    Shapes:
        ``[K, m, n]`` → ``[K, m, n]`` (in ``dtype``)

    Example:
        >>> x = torch.randn(3, 8, 32)
        >>> s = torch.linalg.svdvals(newton_schulz(x))
        >>> bool(s.min() > 0.5 and s.max() < 1.3)
        True
    """
    a, b, c = NS_COEFFICIENTS
    tall = matrices.shape[-2] > matrices.shape[-1]
    x = matrices.mT if tall else matrices
    x = x.to(dtype)
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)  # [K, m, n], spectral norm ≤ 1
    for _ in range(steps):
        gram = x @ x.mT  # [K, m, m]
        x = a * x + torch.baddbmm(gram, gram, gram, beta=b, alpha=c) @ x
    return x.mT if tall else x


def muon_parameters(model: nn.Module, min_dim: int = 16) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Splits ``model``'s parameters into Muon's (2-D, both sides ≥ ``min_dim``) and the rest (Adam's).

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 32), nn.Linear(32, 32), nn.Linear(32, 1))
        >>> muon, adam = muon_parameters(model)
        >>> [tuple(p.shape) for p in muon], len(adam)
        ([(32, 32)], 5)
    """
    muon, adam = [], []
    for parameter in model.parameters():
        (muon if parameter.dim() == 2 and min(parameter.shape) >= min_dim else adam).append(parameter)
    return muon, adam


class MuonAdam(torch.optim.Optimizer):
    r"""Muon on the parameter groups marked ``muon: True``, Adam (or AdamW) on the others.

    Groups take the usual ``lr`` and ``weight_decay``, which a learning-rate scheduler changes for both
    kinds alike. Adam groups apply ``weight_decay`` as an L2 term (``decoupled=False``, PyTorch's Adam)
    or decoupled (AdamW); Muon always decouples it.

    Args:
        params: parameter groups, each with ``"muon"`` (bool) besides ``"params"``.
        lr: learning rate of both (Muon's update is scaled to Adam's RMS).
        betas: Adam's :math:`\beta_1, \beta_2`.
        eps: Adam's :math:`\epsilon`.
        weight_decay: default weight decay.
        momentum: Muon's momentum :math:`\mu` (Nesterov).
        ns_steps: Newton–Schulz iterations.
        decoupled: AdamW instead of Adam for the Adam groups.

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 32), nn.GELU(), nn.Linear(32, 32), nn.GELU(), nn.Linear(32, 1))
        >>> muon, adam = muon_parameters(model)
        >>> optimizer = MuonAdam([{"params": muon, "muon": True}, {"params": adam, "muon": False}], lr=1e-2)
        >>> x = torch.randn(64, 3)
        >>> y = x.norm(dim=1, keepdim=True)
        >>> first = (model(x) - y).square().mean().item()
        >>> for _ in range(100):
        ...     optimizer.zero_grad()
        ...     (model(x) - y).square().mean().backward()
        ...     optimizer.step()
        >>> (model(x) - y).square().mean().item() < 0.1 * first
        True
    """

    def __init__(
        self,
        params: Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.95,
        ns_steps: int = 5,
        decoupled: bool = False,
    ) -> None:
        if not lr >= 0.0 or not weight_decay >= 0.0 or not 0.0 <= momentum < 1.0:
            raise ValueError(
                f"Need lr ≥ 0, weight_decay ≥ 0 and 0 ≤ momentum < 1; got {lr}, {weight_decay}, {momentum}."
            )
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "momentum": momentum,
                    "ns_steps": ns_steps, "decoupled": decoupled, "muon": False}
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["muon"] and any(p.dim() != 2 for p in group["params"]):
                raise ValueError("Muon groups may only hold 2-D weight matrices.")

    @torch.no_grad()
    def step(self, closure=None) -> Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            parameters = [p for p in group["params"] if p.grad is not None]
            if parameters:
                (self._muon_step if group["muon"] else self._adam_step)(group, parameters)
        return loss

    def _muon_step(self, group: dict, parameters: list[Tensor]) -> None:
        momentum, lr, decay = group["momentum"], group["lr"], group["weight_decay"]
        by_shape: dict[tuple[int, int], list[Tensor]] = defaultdict(list)  # (short side, long side) → matrices
        for parameter in parameters:
            by_shape[(min(parameter.shape), max(parameter.shape))].append(parameter)
        for (_, long_side), same in by_shape.items():
            buffers = []
            for parameter in same:
                state = self.state[parameter]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(parameter)
                buffers.append(state["momentum_buffer"])
            gradients = [parameter.grad for parameter in same]
            torch._foreach_lerp_(buffers, gradients, 1.0 - momentum)  # M ← μ M + (1 − μ) G
            nesterov = torch._foreach_lerp(gradients, buffers, momentum)  # (1 − μ) G + μ M
            tall = [parameter.shape[0] > parameter.shape[1] for parameter in same]
            wide = torch.stack([x.mT if t else x for x, t in zip(nesterov, tall)])  # [K, short, long]
            orthogonal = newton_schulz(wide, group["ns_steps"]).to(same[0].dtype).unbind(0)
            updates = [x.mT if t else x for x, t in zip(orthogonal, tall)]
            if decay:
                torch._foreach_mul_(same, 1.0 - lr * decay)
            torch._foreach_add_(same, updates, alpha=-lr * 0.2 * math.sqrt(long_side))

    def _adam_step(self, group: dict, parameters: list[Tensor]) -> None:
        fused = has_fused_adam(parameters)
        averages, squares, steps = [], [], []
        for parameter in parameters:
            state = self.state[parameter]
            if not state:
                state["step"] = torch.zeros((), device=parameter.device if fused else None)
                state["exp_avg"] = torch.zeros_like(parameter)
                state["exp_avg_sq"] = torch.zeros_like(parameter)
            averages.append(state["exp_avg"])
            squares.append(state["exp_avg_sq"])
            steps.append(state["step"])
        beta1, beta2 = group["betas"]
        adam_update(parameters, [p.grad for p in parameters], averages, squares, [], steps, fused=fused or None,
                    decoupled_weight_decay=group["decoupled"], amsgrad=False, beta1=beta1, beta2=beta2, lr=group["lr"],
                    weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)
