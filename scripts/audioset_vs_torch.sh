#!/bin/sh
# Our C implementation against PyTorch on the same data (docs/RESULTS.md "Our C implementation against
# PyTorch"): the unpruned paper model (width 256) trained by `lstmprune train` and by
# experiments/audioset_torch.py with the same hyperparameters, for several seeds, each evaluated on
# AudioSet's evaluation set, and PyTorch once more from our initial weights of each seed (the same start,
# so only the training loops differ); then one table with every seed and the mean ± standard deviation
# (experiments/compare_torch.py).
#
#   scripts/audioset_vs_torch.sh      environment: BIN (build/lstmprune), OUT (runs/audioset_e35),
#                                     LP_SHARED (../shared), SEEDS ("1 2 3 4 5"), EPOCHS (35),
#                                     OURINIT=0 to skip the PyTorch runs from our initial weights
# Resumable: a seed whose result exists is skipped. One thread per run (the runs are small).
set -eu
BIN=${BIN:-build/lstmprune}
OUT=${OUT:-runs/audioset_e35}
SHARED=${LP_SHARED:-../shared}
SEEDS=${SEEDS:-1 2 3 4 5}
EPOCHS=${EPOCHS:-35}
A="$SHARED/data/audioset"
PY=/usr/bin/python3
[ -x "$BIN" ] || { echo "no $BIN: run make first" >&2; exit 1; }
[ -f "$A/bal_train-00.tfrecord" ] || { echo "no AudioSet data in $A (set LP_SHARED)" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "PyTorch is not installed: make bench-peer" >&2; exit 1; }
mkdir -p "$OUT"
export OPENBLAS_NUM_THREADS=1

# the hyperparameters of scripts/audioset.sh's baseline (experiments/audioset.conf), except the epochs
for S in $SEEDS; do
    R="$OUT/ours_seed$S"
    if [ ! -f "$R/eval.txt" ]; then
        echo "== ours, seed $S -> $R"
        rm -rf "$R"
        "$BIN" train --train "$A/bal_train-0[0-6].tfrecord" --valid "$A/bal_train-07.tfrecord" \
            --frame-features audio_embedding:128 --id-key video_id --classes 527 --max-frames 10 --no-l2norm \
            --shuffle-buffer 20000 --hidden 256 --lr 0.001 --batch 64 --epochs "$EPOCHS" --seed "$S" \
            --out "$R" --threads 1 --quiet
        "$BIN" eval --checkpoint "$R/best.ckpt" --data "$A/eval-0*.tfrecord" --threads 1 --out "$R/eval.txt.tmp" --quiet
        mv "$R/eval.txt.tmp" "$R/eval.txt"
    fi
    J="$OUT/torch_seed$S.json"
    if [ ! -f "$J" ]; then
        echo "== PyTorch, seed $S -> $J"
        $PY experiments/audioset_torch.py --train "$A/bal_train-0[0-6].tfrecord" --valid "$A/bal_train-07.tfrecord" \
            --test "$A/eval-0*.tfrecord" --max-frames 10 --no-l2norm --hidden 256 --lr 0.001 --batch 64 \
            --epochs "$EPOCHS" --seed "$S" --threads 1 --out "$J.tmp"
        mv "$J.tmp" "$J"
    fi
    # PyTorch from our initial weights of this seed: `train --lr 1e-30` for one epoch leaves them unchanged
    J="$OUT/torch_ourinit_seed$S.json"
    if [ "${OURINIT:-1}" != 0 ] && [ ! -f "$J" ]; then
        echo "== PyTorch from our initial weights, seed $S -> $J"
        I="$OUT/init_seed$S"
        rm -rf "$I"
        "$BIN" train --train "$A/bal_train-0[0-6].tfrecord" --valid "$A/bal_train-07.tfrecord" \
            --frame-features audio_embedding:128 --id-key video_id --classes 527 --max-frames 10 --no-l2norm \
            --shuffle-buffer 20000 --hidden 256 --lr 1e-30 --batch 64 --epochs 1 --seed "$S" \
            --out "$I" --threads 1 --quiet
        $PY experiments/audioset_torch.py --train "$A/bal_train-0[0-6].tfrecord" --valid "$A/bal_train-07.tfrecord" \
            --test "$A/eval-0*.tfrecord" --max-frames 10 --no-l2norm --hidden 256 --lr 0.001 --batch 64 \
            --epochs "$EPOCHS" --seed "$S" --threads 1 --init-from "$I/last.ckpt" --out "$J.tmp"
        mv "$J.tmp" "$J"
    fi
done
$PY experiments/compare_torch.py "$OUT" | tee "$OUT/compare.md"
