#!/usr/bin/env bash
# Does the simulations' late lead over the DMFT (centred kappa = 4, t = 30-60, 0.5-1 % of L0;
# docs/results/long_horizon.md, session 16) shrink at larger D? Session 18, on an H200.
# More seeds at D = 8000 and the first seeds at D = 16000, each group its own report, so that a
# group cut by its time limit loses only itself. Simulations: train_committee_family in float64
# on the GPU, step 0.04 (as benchmarks/gpu_evidence.sh); DMFT: the stored session-15 solve (the
# analysis swaps in better DMFT solves: scripts/pool_evidence.py --dmft, long_horizon.md).
# Measured on the H200, seconds per seed to t = 60: D = 8000 14-18, D = 16000 57-59; the limits
# leave ~25 % headroom (a first version ran 12 D = 8000 seeds under 150 s and lost them all).
# Usage: bash benchmarks/gpu_lead.sh [session18|session19] (the groups run in that session).
# Reports land in ${OUT:-runs/gpu} as long_horizon_centred_kappa4_t60_D*_gpu.json.
set -u
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONPATH=. PYTHONUNBUFFERED=1
DATA=docs/results/data
nvidia-smi -L
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -3
group() {  # dim, first seed, seeds, seconds
    local name="long_horizon_centred_kappa4_t60_D$1_seeds$2to$(( $2 + $3 - 1 ))_gpu"
    timeout "$4" python3 benchmarks/long_horizon.py evidence --device cuda --time-step 0.04 \
        --problems 3 --t-max 60 --dims "$1" --first-seed "$2" --seeds "$3" \
        --theory $DATA/theory_s15_centred_kappa4_t60.json --json "$OUT/$name.json"
}
if [ "${1:-session18}" = session19 ]; then
    # session 19: six more seeds at D = 16000 (4 -> 10), in pairs (fits one 10-minute call)
    group 16000 4 2 150
    group 16000 6 2 150
    group 16000 8 2 150
else
    group 8000 8 6 115
    group 8000 14 6 115
    group 16000 0 2 170
    group 16000 2 2 170
fi
echo "done after $SECONDS s"
