#!/bin/sh
# The real-data experiment in one command (docs/REPRODUCING.md, results in docs/RESULTS.md):
# train the paper model on AudioSet's balanced training set, evaluate on the evaluation set, prune at
# three rates with eigen+gm against uniform+l2, uniform+random (and the crossed uniform+gm, eigen+l2, and
# the sensitivity-guided rule with gm),
# fine-tune, and tabulate GAP@20, mAP, Hit@1, parameters and measured latency (the sweep's results.md);
# then the sensitivity
# analysis of the baseline and, where PyTorch is installed, the same architecture in PyTorch on the
# same data.
#
#   scripts/audioset.sh            environment: BIN (build/lstmprune), OUT (runs/audioset),
#                                  LP_SHARED (../shared), TORCH=0 to skip the PyTorch run,
#                                  LATENCY_ROUNDS (5) for the final latency measurement
# Resumable: rerunning continues the sweep where it stopped (finished cells are kept).
set -eu
. scripts/audioset_common.sh
OUT=${OUT:-runs/audioset}
# the baseline's epochs and seed (also the PyTorch run's); the rest is experiments/audioset.conf
EPOCHS=25 SEED=1

# sweep CMD-FLAGS...: the sweep with this experiment's configuration
sweep() {
    "$BIN" sweep experiments/audioset.conf --out "$OUT" \
        --set "data.train=$A/bal_train-0[0-6].tfrecord" --set "data.valid=$A/bal_train-07.tfrecord" \
        --set "data.test=$A/eval-0*.tfrecord" --set "model.hidden=$AS_HIDDEN" --set "train.lr=$AS_LR" \
        --set "train.batch=$AS_BATCH" --set "train.epochs=$EPOCHS" --set "train.seed=$SEED" "$@"
}

echo "== sweep: baseline + 18 pruned models -> $OUT"
sweep

# Each cell timed its models while the next cell's training ran: time them again, all in the same
# interleaved rounds (fastest of LATENCY_ROUNDS kept), so the latency columns compare like with like.
echo "== latency of every model again, ${LATENCY_ROUNDS:=5} interleaved rounds"
sweep --remeasure-latency "$LATENCY_ROUNDS"

if [ -f "$OUT/sensitivity/sensitivity.md" ]; then
    echo "== sensitivity: done"
else # --force: a killed analysis left its directory behind
    echo "== sensitivity of the baseline -> $OUT/sensitivity"
    "$BIN" sensitivity --checkpoint "$OUT/baseline/best.ckpt" --out "$OUT/sensitivity" \
        --rates 0.1,0.3,0.5,0.7,0.9 --max-drop 0.01 --quiet --force
fi

if [ "${TORCH:-1}" != 0 ] && have_torch; then
    if [ ! -f "$OUT/torch.json" ]; then
        echo "== PyTorch counterpart -> $OUT/torch.json"
        torch_unpruned "$A/eval-0*.tfrecord" $EPOCHS $SEED --out "$OUT/torch.json.tmp"
        mv "$OUT/torch.json.tmp" "$OUT/torch.json"
    fi
else
    echo "(PyTorch not available or TORCH=0: no counterpart run)"
fi

echo
cat "$OUT/results.md"
[ -f "$OUT/torch.json" ] && echo "PyTorch counterpart (the unpruned model, same data): $OUT/torch.json"
echo
echo "tables: $OUT/results.md (plots beside it), $OUT/sensitivity/sensitivity.md"
