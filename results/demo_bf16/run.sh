#!/bin/bash
# bf16 on the synthetic demo (issue 27): `make demo`'s pipeline (scripts/demo.sh: the paper model at width
# 64 on 3000 synthetic videos, 8 epochs, eigen rates + geometric median at mean rate 0.5, 5 fine-tuning
# epochs) with --precision PRECISION and --seed SEED (the data stay synth seed 1), one thread, the
# baseline and fine-tuned GAP@20 / mAP of the test split taken from each run's report.
# Run from the repository root (make first).
#   run.sh PRECISION SEED...
set -eu
P=$1; shift
BIN=${BIN:-build/lstmprune}
D=runs/demo_bf16
export OPENBLAS_NUM_THREADS=1
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=Haswell # as scripts/demo.sh
fi
if [ ! -f "$D/data/.done" ]; then
    rm -rf "$D/data"
    "$BIN" synth --out "$D/data" --videos 3000 --classes 20 --frames-min 20 --frames-max 60 --seed 1 --quiet
    touch "$D/data/.done"
fi
for S in "$@"; do
    R=$D/${P}_seed$S
    [ -f "$R/report.md" ] && continue
    "$BIN" pipeline --train "$D/data/train*.tfrecord" --valid "$D/data/validate*.tfrecord" \
        --test "$D/data/test*.tfrecord" --classes 20 \
        --model paper --hidden 64 --batch 32 --epochs 8 --lr 0.003 --seed "$S" \
        --target-rate 0.5 --rate-rule eigen --criterion gm --finetune-epochs 5 --finetune-lr 0.002 \
        --latency-batch 160 --latency-frames 60 --out "$R" --force --quiet --threads 1 --precision "$P"
done
