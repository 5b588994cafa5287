"""Tests of the ``triton`` backend: on CPU tensors through Triton's interpreter, in a child process."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest
import torch

from ponita.ops import receiver_csr, spatial_conv

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton not installed")


def test_triton_kernels_match_cpu_and_pass_gradgradcheck_in_the_interpreter():
    checks = pathlib.Path(__file__).with_name("triton_interpreter_checks.py")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(checks)],
        env={**os.environ, "TRITON_INTERPRET": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1", reason="the interpreter runs CPU tensors")
def test_triton_backend_rejects_cpu_tensors_without_the_interpreter():
    graph, _ = receiver_csr(torch.tensor([[0, 1], [1, 0]]), 2)
    with pytest.raises(ValueError, match="'triton' spatial-conv backend needs CUDA tensors"):
        spatial_conv(torch.ones(2, 1, 4), torch.ones(2, 1, 3), torch.ones(3, 4), graph, backend="triton")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_triton_matches_reference_on_cuda(dtype):
    graph, _ = receiver_csr(torch.randint(0, 50, (2, 800)).cuda(), 50)
    inputs = [
        torch.randn(50, 4, 48, dtype=torch.float64, device="cuda"),
        torch.randn(800, 4, 40, dtype=torch.float64, device="cuda"),
        torch.randn(40, 48, dtype=torch.float64, device="cuda"),
    ]
    reference_inputs = [t.to(dtype).double().requires_grad_(True) for t in inputs]
    triton_inputs = [t.to(dtype).requires_grad_(True) for t in inputs]
    with torch.backends.cuda.matmul.flags(allow_tf32=False):
        expected = spatial_conv(*reference_inputs, graph, backend="reference")
        actual = spatial_conv(*triton_inputs, graph, backend="triton")
        expected_grads = torch.autograd.grad(expected.square().sum(), reference_inputs)
        actual_grads = torch.autograd.grad(actual.float().square().sum(), triton_inputs)
    tolerance = 2e-2 if dtype == torch.bfloat16 else 1e-5
    for a, e in zip((actual, *actual_grads), (expected, *expected_grads)):
        assert float((a.double() - e).norm() / e.norm()) < tolerance
