"""Tests of ``scatter_sum`` and ``scatter_mean``."""

import torch

from ponita.ops import scatter_mean, scatter_sum


def _loop_sum(src, index, dim_size):
    out = torch.zeros(dim_size, *src.shape[1:], dtype=src.dtype)
    for k in range(src.shape[0]):
        out[index[k]] += src[k]
    return out


def test_scatter_sum_matches_a_python_loop_and_leaves_empty_rows_zero():
    src = torch.randn(20, 3, 4, dtype=torch.float64)
    index = torch.randint(0, 6, (20,))
    index[index == 2] = 3  # row 2 receives nothing
    out = scatter_sum(src, index, 7)
    assert out.shape == (7, 3, 4)
    torch.testing.assert_close(out, _loop_sum(src, index, 7))
    assert torch.all(out[2] == 0) and torch.all(out[6] == 0)


def test_scatter_mean_divides_by_the_count_and_is_zero_where_empty():
    src = torch.tensor([[1.0], [2.0], [6.0], [5.0]])
    out = scatter_mean(src, torch.tensor([0, 0, 0, 2]), 4)
    torch.testing.assert_close(out, torch.tensor([[3.0], [0.0], [5.0], [0.0]]))


def test_scatter_of_nothing_is_zeros():
    assert torch.equal(scatter_sum(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), 3), torch.zeros(3, 2))
    assert torch.equal(scatter_mean(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), 3), torch.zeros(3, 2))


def test_scatter_sum_and_mean_pass_gradcheck():
    src = torch.randn(9, 2, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 1, 1, 3, 3, 3, 0, 1, 4])
    assert torch.autograd.gradcheck(lambda s: scatter_sum(s, index, 5), (src,))
    assert torch.autograd.gradcheck(lambda s: scatter_mean(s, index, 5), (src,))


def test_scatter_sum_is_deterministic_on_cpu():
    src = torch.randn(5000, 8)
    index = torch.randint(0, 10, (5000,))
    assert torch.equal(scatter_sum(src, index, 10), scatter_sum(src, index, 10))
