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
. scripts/audioset_common.sh
need_torch
OUT=${OUT:-runs/audioset_steps}
SEED=${SEED:-1}
EPOCHS=${EPOCHS:-2}
mkdir -p "$OUT"
export OPENBLAS_NUM_THREADS=1

# PyTorch from our initial weights, replaying our batch order (the whole training set is in our
# shuffle buffer, which --order lstmprune requires), every step logged
torch_run() { # STEPS_TSV [extra audioset_torch.py flags]
    f=$1
    shift
    torch_unpruned "$A/eval-00.tfrecord" "$EPOCHS" "$SEED" --init-from "$OUT/init/last.ckpt" --order lstmprune \
        --steps-out "$f" "$@"
}
echo "== initial weights of seed $SEED (lr 1e-30 leaves them unchanged) -> $OUT/init"
train_unpruned 1e-30 1 "$SEED" "$OUT/init"
echo "== ours, $EPOCHS epochs, twice -> $OUT/ours/train.tsv, $OUT/ours_again/train.tsv"
train_unpruned $AS_LR "$EPOCHS" "$SEED" "$OUT/ours"
train_unpruned $AS_LR "$EPOCHS" "$SEED" "$OUT/ours_again"
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
} >"$OUT/compare.md.tmp" # not piped into tee: a failing comparison stops the script (set -e)
mv "$OUT/compare.md.tmp" "$OUT/compare.md"
cat "$OUT/compare.md"
