#!/usr/bin/env bash
# The GPU checks as one prepared script for a lent GPU (one call of about 9 minutes):
#   1. the paper-mnist preset, unchanged, trained for PAPER_SECONDS of wall time (default 400) and then
#      stopped by SIGTERM, since its 2.4M steps are days even there; the stopped run's final weights are
#      evaluated (`stochreg eval`: 1 pass, and the paper's averaging of 10 stochastic passes) and the
#      whole run folder comes back as one archive, so that a later GPU session continues it with
#      --resume (put the archive at gpu-runs/paper-mnist.tar.gz and carry gpu-runs) (issue 3);
#   2. a torchrun run with NCCL, one GPU, world size 1, DDP_ITERS steps (default 300) (issue 9);
#   3. with SPEED=1 only: speed.py on cuda, the nets' step times against the chip's peak (issue 6).
# Before the call, here (see /work/.library/device/README.md): wheels of what the device lacks
# (kornia, kornia_rs) in an ignored .whl/ folder, and MNIST's IDX files in data/mnist. Then
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl", "data/mnist"], timeout_s=600)
# Everything lands in $OUT (at most 8 files come back: logs, the evaluation JSON, the archive).
set -uo pipefail
OUT=${OUT:-gpu-check}
PAPER_SECONDS=${PAPER_SECONDS:-400}
EVAL_PASSES=${EVAL_PASSES:-1 10}
DDP_ITERS=${DDP_ITERS:-300}
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

run=/tmp/runs/paper-mnist
mkdir -p /tmp/runs
if [ -f gpu-runs/paper-mnist.tar.gz ]; then
    tar -xzf gpu-runs/paper-mnist.tar.gz -C /tmp/runs
    train=(python3 -m stochreg train --resume "$run" --data-dir data --no-progress)
else
    train=(python3 -m stochreg train --preset paper-mnist --data-dir data --no-progress --out "$run")
fi
echo "\$ ${train[*]}   (stopped by SIGTERM after ${PAPER_SECONDS} s)" | tee "$OUT/paper-mnist.log"
start=$(date +%s)
timeout -s TERM -k 60 "$PAPER_SECONDS" "${train[@]}" 2>&1 | tee -a "$OUT/paper-mnist.log"
echo "training wall time: $(( $(date +%s) - start )) s" | tee -a "$OUT/paper-mnist.log"
# The weights at the stop: the latest training checkpoint (checkpoint.pt appears only at the end).
final=$(ls "$run"/checkpoints/step-*.pt 2>/dev/null | tail -1)
[ -f "$run/checkpoint.pt" ] && final="$run/checkpoint.pt"
for passes in $EVAL_PASSES; do
    python3 -m stochreg eval "$final" --data-dir data --passes "$passes" 2>&1 | tee -a "$OUT/paper-mnist-eval.jsonl"
done
tar -czf "$OUT/paper-mnist.tar.gz" -C /tmp/runs paper-mnist

timeout 90 python3 -m torch.distributed.run --standalone --nproc_per_node 1 -m stochreg train \
    --dataset mnist --data-dir data --labels 100 --iters "$DDP_ITERS" --no-progress --out /tmp/runs/ddp-nccl 2>&1 | tee "$OUT/ddp.log"

if [ "${SPEED:-0}" = 1 ]; then
    timeout 200 python3 benchmarks/speed.py --device cuda --inputs digits colour --rounds 3 \
        --peak-tflops 989 --out "$OUT/speed-gpu.json" 2>&1 | tee "$OUT/speed.log"
fi
