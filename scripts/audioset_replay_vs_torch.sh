#!/bin/sh
# Replay a run of ours from the middle in PyTorch (docs/RESULTS.md "Replaying a knock-back"): ours
# (with PyTorch's bias parametrisation, --bias-init pair --bias-lr-mult 2) is trained for FROM epochs, which
# repeats the first FROM epochs of any run of that seed exactly; from that last.ckpt (weights, Adam's m, v
# and step count, the batch cursor) ours trains on to EPOCHS, and PyTorch continues the same state on the
# same batches (experiments/audioset_torch.py --resume-from), in fp32 and in float64. Every step's loss
# and gradient norm is logged on all three; experiments/compare_steps.py shows where they part and
# whether a gradient spike of ours is PyTorch's too; each continuation's best validation epoch is scored
# on the evaluation set. About 10 minutes for ours and PyTorch fp32 each, 25 for float64, from epoch 8.
#
#   scripts/audioset_replay_vs_torch.sh   environment: SEED (43), FROM (8), EPOCHS (35),
#                                         OUT (runs/replay_seed$SEED_e$FROM), PRECS ("fp32 fp64": the
#                                         PyTorch continuations), CLIP (0), BIN, LP_SHARED
# CLIP=N: every continuation clips the gradient norm to N (ours: train.clip = N in its copy of the run's
# config.txt; PyTorch: --clip N); the first FROM epochs stay unclipped. Its outputs carry the suffix _clipN.
# Resumable: a finished part (its output file exists) is not run again.
set -eu
. scripts/audioset_common.sh
need_torch
SEED=${SEED:-43}
FROM=${FROM:-8}
EPOCHS=${EPOCHS:-35}
OUT=${OUT:-runs/replay_seed${SEED}_e$FROM}
PRECS=${PRECS:-fp32 fp64}
CLIP=${CLIP:-0}
X=""
[ "$CLIP" = 0 ] || X="_clip$CLIP"
TEST="$A/eval-0*.tfrecord"
mkdir -p "$OUT"
export OPENBLAS_NUM_THREADS=1

if [ ! -f "$OUT/from/last.ckpt" ]; then
    echo "== ours, seed $SEED, epochs 1-$FROM -> $OUT/from"
    # shellcheck disable=SC2086 # the flags are words
    train_unpruned $AS_LR "$FROM" "$SEED" "$OUT/from" $AS_TORCH_BIAS
fi
R="$OUT/ours$X"
if [ ! -f "$R/eval.txt" ]; then
    echo "== ours from there to epoch $EPOCHS -> $R"
    rm -rf "$R"
    cp -r "$OUT/from" "$R"
    [ "$CLIP" = 0 ] || sed -i "s/^train\.clip = .*/train.clip = $CLIP/" "$R/config.txt"
    "$BIN" train --resume "$R" --epochs "$EPOCHS" --quiet
    "$BIN" eval --checkpoint "$R/best.ckpt" --data "$TEST" --threads 1 --quiet --out "$R/eval.txt.tmp"
    mv "$R/eval.txt.tmp" "$R/eval.txt"
fi
for prec in $PRECS; do
    T="$OUT/torch_$prec$X"
    [ -f "$T.json" ] && continue
    echo "== PyTorch ($prec) from the same state to epoch $EPOCHS -> $T.json"
    flag=""
    [ "$prec" = fp64 ] && flag=--float64
    torch_unpruned "$TEST" "$EPOCHS" "$SEED" --resume-from "$OUT/from/last.ckpt" --clip "$CLIP" $flag \
        --steps-out "$T.tsv" --out "$T.json.tmp" > "$T.log"
    mv "$T.json.tmp" "$T.json"
done
# compare_steps.py fails if the first 10 steps differ by more than 1e-4: the state was not carried over
bad=0
{
    echo "# Seed $SEED replayed from the end of epoch $FROM (gradient clipping of the continuations: $CLIP)"; echo
    echo "## ours against PyTorch (fp32), the same state and batches"; echo
    $PY experiments/compare_steps.py "$OUT/ours$X/train.tsv" "$OUT/torch_fp32$X.tsv" || bad=1
    if [ -f "$OUT/torch_fp64$X.tsv" ]; then
        echo; echo "## control: PyTorch fp32 against PyTorch float64"; echo
        $PY experiments/compare_steps.py "$OUT/torch_fp32$X.tsv" "$OUT/torch_fp64$X.tsv" "PyTorch fp32" "PyTorch float64"
    fi
    echo; echo "## the continuations"; echo
    $PY experiments/replay_table.py "$OUT" "$X"
} > "$OUT/compare$X.md"
cat "$OUT/compare$X.md"
[ $bad = 0 ] || { echo "ours and PyTorch differ in the first steps of the replay" >&2; exit 1; }
