#!/usr/bin/env bash
# The GPU checks as one prepared script for a lent GPU (one call of about 9 minutes):
# training runs side by side on the one GPU for PAPER_SECONDS of wall time (default 400; these small
# nets leave the GPU mostly idle, so runs side by side cost each other little), each then stopped
# by SIGTERM, since the paper preset's 2.4M steps are days even there:
#   paper-mnist       the authors' configuration, unchanged (--preset paper-mnist), split seed 0;
#   paper-mnist-sN    the same on split seed N, for each N in PAPER_SEEDS (default "0 1");
#   default           the quick-start recipe (the CPU default), for its time on a GPU (WITH_DEFAULT=1,
#                     the default; 0 leaves it out).
# Each stopped run's final weights are evaluated (`stochreg eval` of the latest checkpoint: 1 pass,
# and the paper's averaging of 10 stochastic passes), and the paper runs come back as archives that a
# later GPU run continues with --resume (put NAME.tar.gz under gpu-runs/ and carry gpu-runs).
# Before the call, here (see /work/.library/device/README.md): wheels of what the device lacks
# (kornia, kornia_rs) in an ignored .whl/ folder, and MNIST's IDX files in data/mnist. Then
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl", "data/mnist"], timeout_s=600)
# Everything lands in $OUT (at most 8 files come back: logs, the evaluation JSON lines, archives).
# Earlier checks (issues 6 and 9) are in benchmarks/README.md: speed.py --device cuda, and torchrun
# with NCCL (`torchrun --standalone --nproc_per_node 1 -m stochreg train ...`).
set -uo pipefail
OUT=${OUT:-gpu-check}
PAPER_SECONDS=${PAPER_SECONDS:-400}
EVAL_PASSES=${EVAL_PASSES:-1 10}
PAPER_SEEDS=${PAPER_SEEDS:-0 1}
WITH_DEFAULT=${WITH_DEFAULT:-1}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# Fail in seconds, not minutes, when something is missing.
python3 -c "import torch, kornia, stochreg; print('torch', torch.__version__, 'kornia', kornia.__version__, 'cuda', torch.cuda.is_available())" \
    || exit 1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$OUT/gpu.txt"
mkdir -p /tmp/runs

train_for_budget() {  # NAME ARGS...: train, resuming gpu-runs/NAME.tar.gz if carried, stop after the budget
    local name=$1 run=/tmp/runs/$1; shift
    local cmd
    if [ -f "gpu-runs/$name.tar.gz" ]; then
        tar -xzf "gpu-runs/$name.tar.gz" -C /tmp/runs
        cmd=(python3 -m stochreg train --resume "$run" --data-dir data --no-progress --threads 4)
    else
        cmd=(python3 -m stochreg train "$@" --data-dir data --no-progress --threads 4 --overwrite --out "$run")
    fi
    echo "\$ ${cmd[*]}   (stopped by SIGTERM after ${PAPER_SECONDS} s)" > "$OUT/$name.log"
    local start; start=$(date +%s)
    timeout -s TERM -k 60 "$PAPER_SECONDS" "${cmd[@]}" >> "$OUT/$name.log" 2>&1
    echo "training wall time: $(( $(date +%s) - start )) s" >> "$OUT/$name.log"
    # The weights at the stop: the latest training checkpoint (checkpoint.pt appears only at the end).
    local final; final=$(ls "$run"/checkpoints/step-*.pt 2>/dev/null | tail -1)
    [ -f "$run/checkpoint.pt" ] && final="$run/checkpoint.pt"
    for passes in $EVAL_PASSES; do
        python3 -m stochreg eval "$final" --data-dir data --passes "$passes" >> "$OUT/$name.log" 2>&1
    done
}

paper_runs=()
for seed in $PAPER_SEEDS; do
    name=paper-mnist; [ "$seed" = 0 ] || name=paper-mnist-s$seed
    paper_runs+=("$name")
    train_for_budget "$name" --preset paper-mnist --seed "$seed" &
done
[ "$WITH_DEFAULT" = 1 ] && train_for_budget default --dataset mnist --labels 100 &
wait
grep -h '^{"run"' "$OUT"/*.log > "$OUT/eval.jsonl"
for name in "${paper_runs[@]}"; do
    tar -czf "$OUT/$name.tar.gz" -C /tmp/runs "$name"
done
tail -n 6 "$OUT"/*.log
