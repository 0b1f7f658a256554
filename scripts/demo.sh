#!/bin/sh
# make demo: the main job on the embedded default — synthetic data in the real YouTube-8M frame-level
# format — end to end: generate, train the paper model (small width), prune it (eigen rates + geometric
# median, half of the units on average), fine-tune, and report. About a minute on 2 cores.
set -eu
BIN=${1:-build/lstmprune}
OUT=${DEMO_DIR:-demo}
# OpenBLAS picks its GEMM kernels for the CPU, and different kernels round differently: where the CPU has
# AVX2 and FMA, pin OpenBLAS's AVX2 kernels ("Haswell", which it also uses on AMD Zen), so that the demo
# prints the README's numbers on any such machine. A user's own OPENBLAS_CORETYPE wins.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=Haswell
fi
rm -rf "$OUT"
mkdir -p "$OUT"
echo "== 1/2 synthetic YouTube-8M shards (3000 videos, 20 classes, 20-60 frames) -> $OUT/data"
"$BIN" synth --out "$OUT/data" --videos 3000 --classes 20 --frames-min 20 --frames-max 60 --seed 1 --quiet
echo "== 2/2 pipeline: train -> prune -> fine-tune -> report -> $OUT/run"
"$BIN" pipeline --train "$OUT/data/train*.tfrecord" --valid "$OUT/data/validate*.tfrecord" \
    --test "$OUT/data/test*.tfrecord" --classes 20 \
    --model paper --hidden 64 --batch 32 --epochs 8 --lr 0.003 --seed 1 \
    --target-rate 0.5 --rate-rule eigen --criterion gm --finetune-epochs 5 --finetune-lr 0.002 \
    --latency-batch 160 --latency-frames 60 --out "$OUT/run" --quiet
echo
echo "report: $OUT/run/report.md   (spectra: $OUT/run/spectra.csv, models: $OUT/run/models.csv)"
"$BIN" info "$OUT/run/pruned.ckpt" | sed -n '1,10p'
