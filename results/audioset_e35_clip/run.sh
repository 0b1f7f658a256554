#!/bin/sh
# The pre-registered clipped batch (PREREG.md in this directory): ours against PyTorch, both with the
# gradient norm clipped to 1000, frozen code from d8419d7. Run from the repository root:
#
#   results/audioset_e35_clip/run.sh frozen         build the frozen binary and script into runs/audioset_e35_clip/bin
#   results/audioset_e35_clip/run.sh ours SEED...   our runs, one thread (skips seeds whose eval.txt exists)
#   results/audioset_e35_clip/run.sh torch SEED...  PyTorch's runs, one thread (skips seeds whose json exists)
#   results/audioset_e35_clip/run.sh save           copy every finished run's outputs here (step logs gzipped)
#   results/audioset_e35_clip/run.sh restore        the reverse, on a new machine, before resuming
#   results/audioset_e35_clip/run.sh status         finished runs per side (seeds only, no score)
#   results/audioset_e35_clip/run.sh analyze        ONLY when the batch has ended (PREREG.md): the
#                                                   registered analysis of the saved runs, into
#                                                   compare.md and spikes.md here
#
# The runs live in runs/audioset_e35_clip (not in git). The analysis is
#   python3 experiments/compare_torch.py DIR --margin 0.003
#   python3 experiments/spikes.py DIR --clip 1000
set -eu
D=${RUNS:-runs/audioset_e35_clip} # RUNS: another run directory (for trying the script)
K=results/audioset_e35_clip
FROZEN=d8419d7
[ -f "$K/PREREG.md" ] || { echo "run from the repository root" >&2; exit 2; }
[ $# -ge 1 ] || { echo "usage: $0 frozen|ours SEED...|torch SEED...|save|restore|status|analyze" >&2; exit 2; }
mode=$1
shift

frozen() {
    w=$(mktemp -d)
    git worktree add -f "$w" "$FROZEN" >/dev/null
    make -C "$w" -j2 >/dev/null
    mkdir -p "$D/bin"
    cp "$w/build/lstmprune" "$w/experiments/audioset_torch.py" "$w/scripts/audioset_common.sh" "$D/bin/"
    git worktree remove --force "$w"
}

save() {
    for r in "$D"/ours_seed*/; do
        [ -f "$r/eval.txt" ] || continue
        k="$K/$(basename "$r")"
        [ -f "$k/eval.txt" ] && continue
        mkdir -p "$k"
        cp "$r/config.txt" "$r/valid.tsv" "$k/"
        gzip -9 -n -c "$r/train.tsv" >"$k/train.tsv.gz"
        cp "$r/eval.txt" "$k/eval.txt"
    done
    mkdir -p "$K/steps"
    for j in "$D"/torch_seed*.json; do
        [ -f "$j" ] || continue
        s=$(basename "$j" .json)
        [ -f "$K/$s.json" ] && continue
        gzip -9 -n -c "$D/steps/$s.tsv" >"$K/steps/$s.tsv.gz"
        cp "$j" "$K/$s.json"
    done
}

restore() {
    mkdir -p "$D/steps"
    for k in "$K"/ours_seed*/; do
        [ -f "$k/eval.txt" ] || continue
        r="$D/$(basename "$k")"
        mkdir -p "$r"
        cp "$k/config.txt" "$k/valid.tsv" "$r/"
        gzip -d -c "$k/train.tsv.gz" >"$r/train.tsv"
        cp "$k/eval.txt" "$r/eval.txt"
    done
    for j in "$K"/torch_seed*.json; do
        [ -f "$j" ] || continue
        s=$(basename "$j" .json)
        gzip -d -c "$K/steps/$s.tsv.gz" >"$D/steps/$s.tsv"
        cp "$j" "$D/$s.json"
    done
}

status() {
    o=$(find "$K" -path "$K/ours_seed*/eval.txt" | sed 's|.*ours_seed\([0-9]*\)/.*|\1|' | sort -n | tr '\n' ' ')
    t=$(find "$K" -maxdepth 1 -name 'torch_seed*.json' | sed 's|.*torch_seed\([0-9]*\)\.json|\1|' | sort -n | tr '\n' ' ')
    echo "saved in $K: ours $(echo "$o" | wc -w) (seeds $o), PyTorch $(echo "$t" | wc -w) (seeds $t)"
}

analyze() {
    w=$(mktemp -d)
    RUNS=$w "$0" restore
    PY=${PY:-/usr/bin/python3}
    $PY experiments/compare_torch.py "$w" --margin 0.003 >"$K/compare.md"
    $PY experiments/spikes.py "$w" --clip 1000 >"$K/spikes.md"
    rm -rf "$w"
    cat "$K/compare.md" "$K/spikes.md"
}

runs() {
    side=$1
    shift
    BIN=$D/bin/lstmprune
    [ -x "$BIN" ] || { echo "no $BIN: run '$0 frozen' first" >&2; exit 1; }
    LP_SHARED=${LP_SHARED:-../shared}
    # shellcheck source=/dev/null
    . "$D/bin/audioset_common.sh"
    export OPENBLAS_NUM_THREADS=1
    mkdir -p "$D/steps"
    for S in "$@"; do
        if [ "$side" = ours ]; then
            R=$D/ours_seed$S
            [ -f "$R/eval.txt" ] && continue
            echo "== ours seed $S $(date -u +%T)"
            # shellcheck disable=SC2086 # the flags are words
            train_unpruned $AS_LR 35 "$S" "$R" $AS_TORCH_BIAS --clip 1000
            "$BIN" eval --checkpoint "$R/best.ckpt" --data "$A/eval-0*.tfrecord" --threads 1 \
                --out "$R/eval.txt.tmp" --quiet
            mv "$R/eval.txt.tmp" "$R/eval.txt"
        else
            j=$D/torch_seed$S.json
            [ -f "$j" ] && continue
            echo "== torch seed $S $(date -u +%T)"
            $PY "$D/bin/audioset_torch.py" --train "$A/bal_train-0[0-6].tfrecord" \
                --valid "$A/bal_train-07.tfrecord" --test "$A/eval-0*.tfrecord" --max-frames 10 --no-l2norm \
                --hidden "$AS_HIDDEN" --lr "$AS_LR" --batch "$AS_BATCH" --epochs 35 --seed "$S" --threads 1 \
                --clip 1000 --steps-out "$D/steps/torch_seed$S.tsv" --out "$j.tmp"
            mv "$j.tmp" "$j"
        fi
    done
}

case $mode in
frozen) frozen ;;
save) save ;;
restore) restore ;;
status) status ;;
analyze) analyze ;;
ours | torch) runs "$mode" "$@" ;;
*) echo "unknown mode '$mode': frozen, ours, torch, save, restore, status or analyze" >&2; exit 2 ;;
esac
