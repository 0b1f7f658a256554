#!/bin/sh
# The PTB experiment in one command (docs/REPRODUCING.md "## PTB", results in docs/RESULTS.md "## PTB"):
# train the small recipe (2x200) to completion, prune it with eigen+gm at the rate the eigen rule picks
# (tau 0.9) and at fixed mean rates, against uniform+l2 at the same rates and the ISS group-lasso
# baseline (two strengths; eigen+gm and uniform+l2 are also run at the rates ISS reached), fine-tune
# each, and print one table (experiments/ptb_summarize.py) with words/s re-measured side by side; also the
# sensitivity of the baseline, one layer at a time (lm-sensitivity, into OUT/ptb_small_sensitivity).
#
#   scripts/ptb.sh          environment: BIN (build/lstmprune), OUT (runs), THREADS (1)
# Resumable: a finished run (its report.json exists) is skipped; an interrupted training resumes.
set -eu
BIN=${BIN:-build/lstmprune}
OUT=${OUT:-runs}
THREADS=${THREADS:-1}
PY=/usr/bin/python3
[ -x "$BIN" ] || { echo "no $BIN: run make first" >&2; exit 1; }
export OPENBLAS_NUM_THREADS="$THREADS"

BASE=$OUT/ptb_small
want=$(sed -n 's/^train.epochs = //p' "$BASE/config.txt" 2>/dev/null || true)
have=$(tail -n +2 "$BASE/valid.tsv" 2>/dev/null | wc -l)
if [ -f "$BASE/last.ckpt" ] && [ -n "$want" ] && [ "$have" -ge "$want" ]; then
    echo "== baseline $BASE: trained ($have epochs)"
elif [ -f "$BASE/last.ckpt" ]; then
    echo "== continuing the baseline training in $BASE"
    "$BIN" lm-train --resume "$BASE" --threads "$THREADS" --quiet
else
    echo "== training the small recipe -> $BASE"
    "$BIN" lm-train --config experiments/ptb_small.conf --out "$BASE" --threads "$THREADS" --quiet
fi
CK=$BASE/best.ckpt

# cell NAME ARGS...: one lm-prune run into $OUT/ptb_small_NAME, skipped when finished
cell() {
    name=$1; shift
    dir=$OUT/ptb_small_$name
    if [ -f "$dir/report.json" ]; then echo "== $name: done"; return; fi
    echo "== $name"
    rm -rf "$dir"
    "$BIN" lm-prune --checkpoint "$CK" --out "$dir" --threads "$THREADS" --quiet "$@"
}
ISS="--iss-threshold 0.02 --iss-epochs 2 --iss-lr 0.5"
cell eigen_gm_tau09     --tau 0.9
cell uniform_l2_r0305   --rate-rule uniform --criterion l2 --target-rate 0.305   # tau 0.9's mean rate
cell eigen_gm_r05       --target-rate 0.5
cell uniform_l2_r05     --rate-rule uniform --criterion l2 --target-rate 0.5
# shellcheck disable=SC2086 # $ISS: the flags are words
cell iss_l002           --iss-lambda 0.02 $ISS
cell eigen_gm_r0555     --target-rate 0.555                                      # ISS 0.02's mean rate
cell uniform_l2_r0555   --rate-rule uniform --criterion l2 --target-rate 0.555
# shellcheck disable=SC2086 # $ISS: the flags are words
cell iss_l004           --iss-lambda 0.04 $ISS
cell eigen_gm_r08625    --target-rate 0.8625                                     # ISS 0.04's mean rate
cell uniform_l2_r08625  --rate-rule uniform --criterion l2 --target-rate 0.8625

SENS=$OUT/ptb_small_sensitivity
if [ -f "$SENS/sensitivity.md" ]; then
    echo "== sensitivity: done"
else
    echo "== sensitivity of the baseline: one layer at a time, no fine-tuning -> $SENS"
    "$BIN" lm-sensitivity --checkpoint "$CK" --out "$SENS" --threads "$THREADS" --quiet
fi

echo "== table (words/s re-measured, 3 interleaved rounds)"
$PY experiments/ptb_summarize.py --bin "$BIN" --rounds 3 --threads "$THREADS" \
    "$OUT"/ptb_small_eigen_gm_tau09 "$OUT"/ptb_small_uniform_l2_r0305 "$OUT"/ptb_small_eigen_gm_r05 \
    "$OUT"/ptb_small_uniform_l2_r05 "$OUT"/ptb_small_iss_l002 "$OUT"/ptb_small_eigen_gm_r0555 \
    "$OUT"/ptb_small_uniform_l2_r0555 "$OUT"/ptb_small_iss_l004 "$OUT"/ptb_small_eigen_gm_r08625 \
    "$OUT"/ptb_small_uniform_l2_r08625 >"$OUT/ptb_small_table.md.tmp" # not piped: a failure stops the script
mv "$OUT/ptb_small_table.md.tmp" "$OUT/ptb_small_table.md"
cat "$OUT/ptb_small_table.md"
