"""GELU: torch's values, and derivatives equal to torch's to the third order."""

import torch
import torch.nn.functional as F

from ponita.nn import GELU


def derivatives(fn, x: torch.Tensor) -> list[torch.Tensor]:
    """First, second and third derivatives of sum(fn(x)·w) along x, by nested autograd."""
    x = x.clone().requires_grad_(True)
    weights = torch.linspace(0.5, 1.5, x.numel(), dtype=x.dtype).view_as(x)
    first = torch.autograd.grad((fn(x) * weights).sum(), x, create_graph=True)[0]
    second = torch.autograd.grad((first * first).sum(), x, create_graph=True)[0]
    third = torch.autograd.grad((second * weights).sum(), x)[0]
    return [first, second, third]


def test_values_and_three_orders_of_derivatives_match_torch() -> None:
    x = torch.cat([torch.linspace(-14.0, 14.0, 201), torch.randn(300)]).double()
    assert torch.equal(GELU()(x), F.gelu(x))
    for ours, theirs in zip(derivatives(GELU(), x), derivatives(F.gelu, x)):
        assert torch.allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_gradgradcheck_and_the_in_place_double_backward() -> None:
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(GELU(), (x,))
    # The training backward of force training (no create_graph) takes the in-place path:
    pos = torch.randn(40, 3, dtype=torch.float64, requires_grad=True)
    gradients = []
    for fn in (GELU(), F.gelu):
        pos.grad = None
        energy = fn(pos @ torch.linspace(-2, 2, 24, dtype=torch.float64).view(3, 8)).sum()
        forces = torch.autograd.grad(energy, pos, create_graph=True)[0]
        (forces**2).sum().backward()
        gradients.append(pos.grad.clone())
    assert torch.allclose(gradients[0], gradients[1], rtol=1e-12)
