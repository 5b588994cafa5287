"""Tests of the ``triton`` backend: on CPU tensors through Triton's interpreter, in a child process."""

import importlib.util
import os
import pathlib
import subprocess
import sys
from xml.etree import ElementTree

import pytest
import torch

from ponita.ops import receiver_csr, spatial_conv

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton not installed")


def test_triton_kernels_match_cpu_and_pass_gradgradcheck_in_the_interpreter(tmp_path):
    checks = pathlib.Path(__file__).with_name("triton_interpreter_checks.py")
    report = tmp_path / "interpreter_checks.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", f"--junitxml={report}", str(checks)],
        env={**os.environ, "TRITON_INTERPRET": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout[-5000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    # pytest exits with 0 when every collected test is skipped (5 only when none is collected), so count
    # what ran: the child passes only if some check actually ran and passed.
    suites = list(ElementTree.parse(report).getroot().iter("testsuite"))
    counts = [sum(int(suite.get(key, 0)) for suite in suites) for key in ("tests", "skipped", "failures", "errors")]
    tests, skipped, failures, errors = counts
    ran = tests - skipped - failures - errors
    assert ran > 0, f"no interpreter check ran ({tests} collected, {skipped} skipped):\n{output}"


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1", reason="the interpreter runs CPU tensors")
def test_triton_backend_rejects_cpu_tensors_without_the_interpreter():
    graph, _ = receiver_csr(torch.tensor([[0, 1], [1, 0]]), 2)
    with pytest.raises(ValueError, match="'triton' spatial-conv backend needs CUDA tensors"):
        spatial_conv(torch.ones(2, 1, 4), torch.ones(2, 1, 3), torch.ones(3, 4), graph, backend="triton")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_triton_matches_reference_on_cuda(dtype, monkeypatch):
    graph, _ = receiver_csr(torch.randint(0, 50, (2, 800)).cuda(), 50)
    inputs = [
        torch.randn(50, 4, 48, dtype=torch.float64, device="cuda"),
        torch.randn(800, 4, 40, dtype=torch.float64, device="cuda"),
        torch.randn(40, 48, dtype=torch.float64, device="cuda"),
    ]
    reference_inputs = [t.to(dtype).double().requires_grad_(True) for t in inputs]
    triton_inputs = [t.to(dtype).requires_grad_(True) for t in inputs]
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)  # float32 in IEEE precision
    expected = spatial_conv(*reference_inputs, graph, backend="reference")
    actual = spatial_conv(*triton_inputs, graph, backend="triton")
    expected_grads = torch.autograd.grad(expected.square().sum(), reference_inputs)
    actual_grads = torch.autograd.grad(actual.double().square().sum(), triton_inputs)  # the same loss in float64
    # Relative error in norm; the reference gets the same (rounded) inputs in float64, so float64 kernels
    # differ from it only in summation order. The same kernels and shapes through Triton's interpreter on
    # the CPU gave at most 1.7e-15 (float64), 1.5e-7 (float32) and 6.1e-3 (bfloat16) over y and the
    # three gradients; the bounds leave 10^5, 60x and 3x for the GPU's accumulation order.
    tolerance = {torch.float64: 1e-10, torch.float32: 1e-5, torch.bfloat16: 2e-2}[dtype]
    for a, e in zip((actual, *actual_grads), (expected, *expected_grads)):
        assert float((a.double() - e).norm() / e.norm()) < tolerance
