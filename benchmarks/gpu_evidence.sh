#!/usr/bin/env bash
# DMFT against seed-averaged gradient descent at large D, simulated on a GPU (session 15).
# Run from the repository root on a CUDA machine; reports land in ${OUT:-runs/gpu}.
# The DMFT curves are read from docs/results/data/theory_s15_*.json (solved on the 2-core CPU
# machine with `dmft solve ... --grid log --json`); the simulations are
# empirical.committee.family.train_committee_family in float64 on the GPU, step 0.04 in theory time.
# Measured on an H200 (session 16), seconds per seed: centred t <= 150, D = 4000: 5-6, D = 8000: 19-23;
# alpha = 10, t <= 60, D = 4000: 4, D = 8000: 15-16, D = 16000: 56-62; alpha = 3, D = 8000: 4.5-5.5.
# A report is written only when its run completes: the limits below leave ~25 % headroom.
set -u
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1            # one log (the device tool brings back at most 8 files)
export PYTHONPATH=. PYTHONUNBUFFERED=1
DATA=docs/results/data
nvidia-smi -L
python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name(0))"
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -20
evidence() {  # name, seconds, then the evidence options
    local name=$1 limit=$2; shift 2
    timeout "$limit" python3 benchmarks/long_horizon.py evidence --device cuda --time-step 0.04 \
        --json "$OUT/$name.json" "$@"
}
evidence centred_kappa4_t150 270 --problems 3 --t-max 150 --dims 4000 8000 --seeds 8 \
    --theory $DATA/theory_s15_centred_kappa4_t150.json
evidence alpha10_N2_t60 200 --problems 1 --t-max 60 --dims 4000 8000 --seeds 8 \
    --theory $DATA/theory_s15_alpha10_N2_t60.json
evidence alpha3_N2_t60 60 --problems 0 --t-max 60 --dims 8000 --seeds 4 \
    --theory $DATA/theory_s15_alpha3_N2_t60.json
evidence alpha3_N4_t60 60 --problems 2 --t-max 60 --dims 8000 --seeds 4 \
    --theory $DATA/theory_s15_alpha3_N4_t60.json
left=$(( ${BUDGET:-560} - SECONDS ))
if [ "$left" -ge 300 ]; then
    evidence alpha10_N2_t60_D16000 "$left" --problems 1 --t-max 60 --dims 16000 --seeds 4 \
        --theory $DATA/theory_s15_alpha10_N2_t60.json
else
    echo "skipped D = 16000: $left s left of the budget (it needs ~300 s: run it in a call of its own)"
fi
