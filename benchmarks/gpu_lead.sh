#!/usr/bin/env bash
# Does the simulations' late lead over the DMFT (centred kappa = 4, t = 30-60, 0.5-1 % of L0;
# docs/results/long_horizon.md, session 16) shrink at larger D? Session 18, one H200 call.
# More seeds at D = 8000 and the first seeds at D = 16000, each group its own report, so that a
# group cut by the time limit loses only itself. Simulations: train_committee_family in float64
# on the GPU, step 0.04 (as benchmarks/gpu_evidence.sh); DMFT: the stored session-15 solve.
set -u
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONPATH=. PYTHONUNBUFFERED=1
DATA=docs/results/data
nvidia-smi -L
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -3
group() {  # name, seconds, dim, first seed, seeds
    timeout "$2" python3 benchmarks/long_horizon.py evidence --device cuda --time-step 0.04 \
        --problems 3 --t-max 60 --dims "$3" --first-seed "$4" --seeds "$5" \
        --theory $DATA/theory_s15_centred_kappa4_t60.json --json "$OUT/$1.json"
}
group centred_t60_D8000_seeds8to19 150 8000 8 12
group centred_t60_D16000_seeds0to1 170 16000 0 2
left=$(( ${BUDGET:-500} - SECONDS ))
[ "$left" -ge 150 ] && group centred_t60_D16000_seeds2to3 "$left" 16000 2 2
echo "done after $SECONDS s"
