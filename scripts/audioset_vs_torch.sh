#!/bin/sh
# Our C implementation against PyTorch on the same data (docs/RESULTS.md "Our C implementation against
# PyTorch"): the unpruned paper model (width 256) trained by `lstmprune train` and by
# experiments/audioset_torch.py with the same hyperparameters, for several seeds, each evaluated on
# AudioSet's evaluation set, and PyTorch once more from our initial weights of each seed (the same start,
# so only the training loops differ) and, with PAIRED=1, from our initial weights on exactly our batches
# (the same inputs: only rounding differs); then one table with every seed and the mean ± standard deviation
# (experiments/compare_torch.py), and each run's gradient spikes (experiments/spikes.py: OUT/spikes.md).
#
#   scripts/audioset_vs_torch.sh      environment: BIN (build/lstmprune), OUT (runs/audioset_e35),
#                                     LP_SHARED (../shared), SEEDS ("1 2 3 4 5"), EPOCHS (35),
#                                     OURINIT=0 to skip the PyTorch runs from our initial weights,
#                                     PAIRED=1 to add PyTorch from our initial weights on our batches,
#                                     MARGIN (0.003): the non-inferiority margin compare_torch.py tests,
#                                     BIAS=torch: our runs with PyTorch's bias parametrisation (two bias
#                                     vectors = --bias-init pair --bias-lr-mult 2; docs/METHOD.md), into
#                                     OUT = runs/audioset_e35_pair by default,
#                                     CLIP=N: both sides clip the gradient norm to N (ours --clip N,
#                                     PyTorch --clip N); the default OUT gets the suffix _clipN
# Resumable: a seed whose result exists is skipped. One thread per run (the runs are small); two
# invocations with different SEEDS may run side by side on the same OUT.
set -eu
. scripts/audioset_common.sh
need_torch
# the two parametrisations' runs never share a directory (the default OUT differs)
case ${BIAS:-paper} in
paper) OURS_FLAGS='' OUT=${OUT:-runs/audioset_e35} ;;
torch) OURS_FLAGS=$AS_TORCH_BIAS OUT=${OUT:-runs/audioset_e35_pair} ;;
*) echo "BIAS must be paper or torch, got '$BIAS'" >&2; exit 2 ;;
esac
CLIP=${CLIP:-0}
if [ "$CLIP" != 0 ]; then
    OURS_FLAGS="$OURS_FLAGS --clip $CLIP"
    case $OUT in runs/audioset_e35 | runs/audioset_e35_pair) OUT=${OUT}_clip$CLIP ;; esac
fi
SEEDS=${SEEDS:-1 2 3 4 5}
EPOCHS=${EPOCHS:-35}
mkdir -p "$OUT/steps"
export OPENBLAS_NUM_THREADS=1

# torch_run JSON WHAT [audioset_torch.py flags]: one PyTorch run of seed $S into JSON unless it exists
torch_run() {
    j=$1 what=$2
    shift 2
    [ -f "$j" ] && return 0
    echo "== PyTorch$what, seed $S -> $j"
    torch_unpruned "$A/eval-0*.tfrecord" "$EPOCHS" "$S" --clip "$CLIP" "$@" --out "$j.tmp"
    mv "$j.tmp" "$j"
}

# our initial weights of seed $S into $I/last.ckpt (sets I): `train --lr 1e-30` for one epoch leaves them unchanged
init_ckpt() {
    I="$OUT/init_seed$S"
    [ -f "$I/last.ckpt" ] || train_unpruned 1e-30 1 "$S" "$I"
}

# the hyperparameters of scripts/audioset.sh's baseline (experiments/audioset.conf), except the epochs
for S in $SEEDS; do
    R="$OUT/ours_seed$S"
    if [ ! -f "$R/eval.txt" ]; then
        echo "== ours, seed $S -> $R"
        # shellcheck disable=SC2086 # the flags are words
        train_unpruned $AS_LR "$EPOCHS" "$S" "$R" $OURS_FLAGS
        "$BIN" eval --checkpoint "$R/best.ckpt" --data "$A/eval-0*.tfrecord" --threads 1 --out "$R/eval.txt.tmp" --quiet
        mv "$R/eval.txt.tmp" "$R/eval.txt"
    fi
    # PyTorch as it comes logs every step's gradient norm, as our train.tsv does (experiments/spikes.py)
    torch_run "$OUT/torch_seed$S.json" "" --steps-out "$OUT/steps/torch_seed$S.tsv"
    if [ "${OURINIT:-1}" != 0 ] && [ ! -f "$OUT/torch_ourinit_seed$S.json" ]; then
        init_ckpt
        torch_run "$OUT/torch_ourinit_seed$S.json" " from our initial weights" --init-from "$I/last.ckpt"
    fi
    # --order lstmprune: exactly our batches too, the inputs of our run
    if [ "${PAIRED:-0}" != 0 ] && [ ! -f "$OUT/torch_paired_seed$S.json" ]; then
        init_ckpt
        torch_run "$OUT/torch_paired_seed$S.json" " from our initial weights on our batches" \
            --init-from "$I/last.ckpt" --order lstmprune
    fi
done
# written to a file, then shown (piped into tee, a failing table would not stop the script)
$PY experiments/compare_torch.py "$OUT" --margin "${MARGIN:-0.003}" >"$OUT/compare.md.tmp"
mv "$OUT/compare.md.tmp" "$OUT/compare.md"
cat "$OUT/compare.md"
# gradient spikes per run beside the scores (PyTorch runs from before --steps-out was passed have no log)
if ls "$OUT"/steps/torch_seed*.tsv >/dev/null 2>&1; then
    $PY experiments/spikes.py "$OUT" --clip "$CLIP" >"$OUT/spikes.md.tmp"
    mv "$OUT/spikes.md.tmp" "$OUT/spikes.md"
    cat "$OUT/spikes.md"
fi
