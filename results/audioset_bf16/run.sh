#!/bin/bash
# bf16 on the AudioSet clipped recipe (issue 27): the arm of results/audioset_e35_clip (width 256, Adam lr
# 1e-3, batch 64, 35 epochs, PyTorch's bias parametrisation, --clip 1000, one thread), with --precision
# bf16 or fp32 (the comparison arm, same binary, same machine); the best validation epoch scored on the
# evaluation set. Run from the repository root (make first).
#   run.sh PRECISION SEED...
set -eu
P=$1; shift
BIN=${BIN:-build/lstmprune}
A=${LP_SHARED:-../shared}/data/audioset
export OPENBLAS_NUM_THREADS=1
for S in "$@"; do
    R=runs/audioset_bf16/${P}_seed$S
    [ -f "$R/eval.txt" ] && continue
    rm -rf "$R"
    "$BIN" train --train "$A/bal_train-0[0-6].tfrecord" --valid "$A/bal_train-07.tfrecord" \
        --frame-features audio_embedding:128 --id-key video_id --classes 527 --max-frames 10 --no-l2norm \
        --shuffle-buffer 20000 --hidden 256 --lr 0.001 --batch 64 --epochs 35 --seed "$S" \
        --out "$R" --threads 1 --quiet --bias-init pair --bias-lr-mult 2 --clip 1000 --precision "$P"
    "$BIN" eval --checkpoint "$R/best.ckpt" --data "$A/eval-0*.tfrecord" --threads 1 --out "$R/eval.txt.tmp" --quiet \
        --precision "$P"
    mv "$R/eval.txt.tmp" "$R/eval.txt"
done
