#!/usr/bin/env bash
# The GPU checks of issues 3, 6 and 9 as one prepared script for a lent GPU (about 9 minutes):
#   1. speed.py on cuda: the digit nets and wrn-28-2 / fmp-cifar at 32x32 on random data, with
#      achieved TFLOP/s against the chip's peak (issue 6);
#   2. the paper-mnist preset, unchanged, for a fixed number of steps, its logged test errors and
#      time (issue 3);
#   3. a torchrun run with NCCL, one GPU, world size 1 (issue 9).
# Before the call, here (see /work/.library/device/README.md): wheels of what the device lacks
# (kornia, kornia_rs) in an ignored .whl/ folder, and MNIST's IDX files in data/mnist. Then
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl", "data/mnist"], timeout_s=600)
# Everything lands in $OUT.
set -uo pipefail
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
# H200 dense peaks: about 989 TFLOP/s bf16 on tensor cores; float32 steps are far below that.
timeout 200 python3 benchmarks/speed.py --device cuda --inputs digits colour --rounds 3 \
    --peak-tflops 989 --out "$OUT/speed-gpu.json" 2>&1 | tee "$OUT/speed.log"
timeout 230 python3 -m stochreg train --preset paper-mnist --data-dir data --iters 24000 --eval-every 3000 \
    --no-progress --out "$OUT/paper-mnist" 2>&1 | tee "$OUT/paper-mnist.log"
timeout 100 python3 -m torch.distributed.run --standalone --nproc_per_node 1 -m stochreg train \
    --dataset mnist --data-dir data --labels 100 --iters 1000 --no-progress --out "$OUT/ddp-nccl" 2>&1 | tee "$OUT/ddp.log"
