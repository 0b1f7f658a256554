#!/bin/sh
# Step by step against PyTorch (docs/RESULTS.md "Same start, same batches"): `lstmprune train` and
# experiments/audioset_torch.py from the same initial weights (ours, seed S) on the same batches in the
# same order (audioset_torch.py --order lstmprune replays our batcher's shuffle), the loss and global
# gradient norm of every step written by both, then experiments/compare_steps.py prints where the two
# trajectories part. Controls: each side run a second time with the same command (both are
# bit-reproducible at one thread, so a difference there would not be rounding), and PyTorch in double
# precision on the same batches (how fast fp32 rounding alone moves a run away). About 8 minutes for the
# default 2 epochs on this 2-core machine while other runs shared it.
#
#   scripts/audioset_steps_vs_torch.sh    environment: BIN (build/lstmprune), OUT (runs/audioset_steps),
#                                         LP_SHARED (../shared), SEED (1), EPOCHS (2)
set -eu
BIN=${BIN:-build/lstmprune}
OUT=${OUT:-runs/audioset_steps}
SHARED=${LP_SHARED:-../shared}
SEED=${SEED:-1}
EPOCHS=${EPOCHS:-2}
A="$SHARED/data/audioset"
PY=/usr/bin/python3
[ -x "$BIN" ] || { echo "no $BIN: run make first" >&2; exit 1; }
[ -f "$A/bal_train-00.tfrecord" ] || { echo "no AudioSet data in $A (set LP_SHARED)" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "PyTorch is not installed: make bench-peer" >&2; exit 1; }
mkdir -p "$OUT"
export OPENBLAS_NUM_THREADS=1

# the data and hyperparameters of scripts/audioset_vs_torch.sh; the whole training set in the shuffle
# buffer (the order audioset_torch.py --order lstmprune replays)
train() { # LR EPOCHS DIR
    rm -rf "$3"
    "$BIN" train --train "$A/bal_train-0[0-6].tfrecord" --valid "$A/bal_train-07.tfrecord" \
        --frame-features audio_embedding:128 --id-key video_id --classes 527 --max-frames 10 --no-l2norm \
        --shuffle-buffer 20000 --hidden 256 --lr "$1" --batch 64 --epochs "$2" --seed "$SEED" \
        --out "$3" --threads 1 --quiet
}
torch_run() { # STEPS_TSV [extra audioset_torch.py flags]
    f=$1
    shift
    $PY experiments/audioset_torch.py --train "$A/bal_train-0[0-6].tfrecord" --valid "$A/bal_train-07.tfrecord" \
        --test "$A/eval-00.tfrecord" --max-frames 10 --no-l2norm --hidden 256 --lr 0.001 --batch 64 \
        --epochs "$EPOCHS" --seed "$SEED" --threads 1 --init-from "$OUT/init/last.ckpt" --order lstmprune \
        --steps-out "$f" "$@"
}
echo "== initial weights of seed $SEED (lr 1e-30 leaves them unchanged) -> $OUT/init"
train 1e-30 1 "$OUT/init"
echo "== ours, $EPOCHS epochs, twice -> $OUT/ours/train.tsv, $OUT/ours_again/train.tsv"
train 0.001 "$EPOCHS" "$OUT/ours"
train 0.001 "$EPOCHS" "$OUT/ours_again"
echo "== PyTorch from the same weights on the same batches, twice -> $OUT/torch_steps.tsv, $OUT/torch_steps_again.tsv"
torch_run "$OUT/torch_steps.tsv"
torch_run "$OUT/torch_steps_again.tsv"
echo "== PyTorch in float64, the same weights and batches -> $OUT/torch64_steps.tsv"
torch_run "$OUT/torch64_steps.tsv" --float64
{
    echo "## ours against PyTorch (fp32)"; echo
    $PY experiments/compare_steps.py "$OUT/ours/train.tsv" "$OUT/torch_steps.tsv"
    echo; echo "## control: each implementation against itself (the same command twice)"; echo
    $PY experiments/compare_steps.py "$OUT/ours/train.tsv" "$OUT/ours_again/train.tsv" "ours" "ours again"
    echo
    $PY experiments/compare_steps.py "$OUT/torch_steps.tsv" "$OUT/torch_steps_again.tsv" "PyTorch" "PyTorch again"
    echo; echo "## control: PyTorch fp32 against PyTorch float64"; echo
    $PY experiments/compare_steps.py "$OUT/torch_steps.tsv" "$OUT/torch64_steps.tsv" "PyTorch fp32" "PyTorch float64"
    echo; echo "## ours against PyTorch float64"; echo
    $PY experiments/compare_steps.py "$OUT/ours/train.tsv" "$OUT/torch64_steps.tsv" ours "PyTorch float64"
} | tee "$OUT/compare.md"
