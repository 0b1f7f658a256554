#!/bin/sh
# The PTB experiment in one command (docs/REPRODUCING.md "## PTB", results in docs/RESULTS.md "## PTB"),
# all of it lstmprune: the sweep of experiments/ptb_small.conf trains the small recipe (2x200) to
# completion, prunes it with eigen+gm and uniform+l2 at the mean rates of the eigen rule (tau 0.9) and of
# ISS, and runs the ISS group-lasso baseline at two strengths, fine-tunes each and writes results.md /
# results.csv with the plots; then every model's speed is measured again side by side (interleaved
# rounds), and the sensitivity of the baseline, one layer at a time (lm-sensitivity).
#
#   scripts/ptb.sh          environment: BIN (build/lstmprune), OUT (runs), THREADS (1), ROUNDS (3)
# Resumable: rerunning continues the sweep where it stopped (finished cells are kept).
set -eu
BIN=${BIN:-build/lstmprune}
OUT=${OUT:-runs}
THREADS=${THREADS:-1}
[ -x "$BIN" ] || { echo "no $BIN: run make first" >&2; exit 1; }
export OPENBLAS_NUM_THREADS="$THREADS"
SW=$OUT/ptb_small_sweep

echo "== sweep: baseline + 8 pruned models + 2 ISS -> $SW"
"$BIN" sweep experiments/ptb_small.conf --out "$SW" --set "train.threads=$THREADS" --quiet

# Each cell timed its models while the machine did other work: time them again, all in the same
# interleaved rounds (fastest kept), so the speed columns compare like with like.
echo "== speed of every model again, ${ROUNDS:=3} interleaved rounds"
"$BIN" sweep experiments/ptb_small.conf --out "$SW" --set "train.threads=$THREADS" --remeasure-latency "$ROUNDS" --quiet

SENS=$OUT/ptb_small_sensitivity
if [ -f "$SENS/sensitivity.md" ]; then
    echo "== sensitivity: done"
else
    echo "== sensitivity of the baseline: one layer at a time, no fine-tuning -> $SENS"
    # --force: a killed analysis left its directory behind
    "$BIN" lm-sensitivity --checkpoint "$SW/baseline/best.ckpt" --out "$SENS" --threads "$THREADS" --quiet --force
fi

echo
cat "$SW/results.md"
echo
echo "tables: $SW/results.md (plots beside it), $SENS/sensitivity.md"
