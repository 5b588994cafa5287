#!/usr/bin/env bash
# GPU evaluation of a qm9-edm generator: quality against sampler steps (ancestral and DDIM, same seed, N molecules
# each), seconds per molecule, EDM's test NLL, and the training throughput of the paper preset. One JSON out.
#
#   bash scripts/gpu_edm_eval.sh GENERATOR.pt EDM_QM9_TEST.npz OUTDIR [N]     # ≈ 5 minutes on an H200
#
# DEVICE (default cuda), TRAIN_STEPS (timed training steps, default 20) and NLL_NUM (test molecules for the NLL,
# default all) can be set for a dry run on the CPU.
set -uo pipefail
checkpoint=${1:?generator}; npz=${2:?edm_qm9_test.npz}; out=${3:?outdir}; num=${4:-1000}
device=${DEVICE:-cuda}; train_steps=${TRAIN_STEPS:-20}; nll_num=${NLL_NUM:+--num $NLL_NUM}
mkdir -p "$out"; work=$(mktemp -d)
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
$python benchmarks/bench_edm_training.py --npz "$npz" --preset paper --device "$device" --precisions fp32 bf16 \
    --steps "$train_steps" --json "$work/training.json"
$python benchmarks/edm_test_nll.py "$checkpoint" --npz "$npz" --device "$device" $nll_num --json "$work/nll.json"
for run in "ancestral 1000" "ancestral 500" "ancestral 250" "ancestral 100" "ancestral 50" \
           "ddim 1000" "ddim 250" "ddim 100" "ddim 50" "ddim 25"; do
    set -- $run
    image=(); [ "$1 $2" = "ancestral 1000" ] && image=(--image "$out/samples_ancestral_1000.png")
    ponita sample "$checkpoint" -n "$num" --batch-size "$num" --seed 0 --sampler "$1" --steps "$2" --device "$device" \
        -o "$work/$1_$2.xyz" --metrics "${image[@]}" > "$work/$1_$2.log" 2>&1 || tail -3 "$work/$1_$2.log"
done
$python - "$work" "$out/edm_eval.json" <<'PY'
import json, pathlib, sys
work, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
rows = [json.loads(p.read_text()) for p in sorted(work.glob("*_*.json"))]
def read(name):
    path = work / name
    return json.loads(path.read_text()) if path.is_file() else None
record = {"training": read("training.json"), "nll": read("nll.json"), "samples": rows}
target.write_text(json.dumps(record, indent=1))
print(f"{'sampler':10s} {'steps':>5s} {'atom stab':>9s} {'mol stab':>8s} {'valid':>6s} {'V*U':>6s} {'ms/mol':>7s}")
for r in sorted(rows, key=lambda r: (r["sampler"], -r["steps"])):
    print(f"{r['sampler']:10s} {r['steps']:5d} {100*r['atom_stability']:9.1f} {100*r['molecule_stability']:8.1f} "
          f"{100*r['validity']:6.1f} {100*r['valid_and_unique']:6.1f} {1e3*r['seconds_per_molecule']:7.2f}")
PY
