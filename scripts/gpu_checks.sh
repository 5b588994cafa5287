#!/usr/bin/env bash
# The GPU checks in one go: the CUDA tests (calibration, a force-training step against the CPU, a short
# fit, the Triton kernels against the reference), the spatial-conv and full-model benchmarks on the GPU,
# and sampling speed of the pretrained generator. Writes logs and JSON into OUTDIR.
#
#   bash scripts/gpu_checks.sh OUTDIR            # ≈ 5 minutes on an H200
#
# Needs the package installed (pip install -e .) with triton, ase and rdkit available.
set -uo pipefail
out=${1:?usage: scripts/gpu_checks.sh OUTDIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-/tmp/triton-cache}
python=${PYTHON:-python3}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
$python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$out/gpu.txt"

echo "== CUDA tests"
$python -m pytest tests/test_cuda.py tests/ops/test_spatial_conv_triton.py -q -p no:cacheprovider -x 2>&1 \
    | tee "$out/tests.log" | tail -15

echo "== spatial conv on the GPU"
$python benchmarks/bench_spatial_conv.py --device cuda --backends reference triton --repeats 20 \
    --json "$out/spatial_conv_cuda.json" 2>&1 | tee "$out/spatial_conv.log"

echo "== full model on the GPU"
$python benchmarks/bench_model.py --device cuda --backends reference triton --repeats 20 \
    --json "$out/model_cuda.json" 2>&1 | tee "$out/model.log"

echo "== sampling speed of the pretrained generator"
for args in "--sampler ancestral --steps 1000" "--sampler ddim --steps 100"; do
    # shellcheck disable=SC2086
    ponita sample pretrained/qm9_edm_quick.pt -n 1000 --batch-size 1000 --seed 0 $args --device cuda \
        -o "$out/sample.xyz" --metrics 2>&1 | tail -4 | tee -a "$out/sample.log"
done
