# shellcheck shell=sh
# Sourced by the AudioSet scripts (scripts/audioset*.sh): paths, checks, and the data flags that
# `lstmprune train` and experiments/audioset_torch.py share for ../shared/data/audioset (shards 0-6 train,
# shard 7 selects the best epoch, the evaluation set is the test data; 1-10 frames of 128 bytes, 527
# classes, no per-frame L2 normalisation).
#   environment: BIN (build/lstmprune), LP_SHARED (../shared)
BIN=${BIN:-build/lstmprune}
SHARED=${LP_SHARED:-../shared}
A="$SHARED/data/audioset"
PY=/usr/bin/python3
[ -x "$BIN" ] || { echo "no $BIN: run make first" >&2; exit 1; }
[ -f "$A/bal_train-00.tfrecord" ] || { echo "no AudioSet data in $A (set LP_SHARED)" >&2; exit 1; }

# the hyperparameters every AudioSet run shares (those of experiments/audioset.conf)
AS_HIDDEN=256 AS_LR=0.001 AS_BATCH=64
# PyTorch's nn.LSTM bias parametrisation (b_ih + b_hh) in ours, exactly (docs/METHOD.md)
# shellcheck disable=SC2034 # used by the scripts that source this file
AS_TORCH_BIAS="--bias-init pair --bias-lr-mult 2"

have_torch() { $PY -c 'import torch' 2>/dev/null; }
need_torch() { have_torch || { echo "PyTorch is not installed: make bench-peer" >&2; exit 1; }; }

# train_unpruned LR EPOCHS SEED DIR [lstmprune train flags]: the unpruned paper model (Adam, the whole
# training set in the shuffle buffer: a full permutation per epoch), one thread, into the run directory DIR
train_unpruned() {
    lr=$1 epochs=$2 seed=$3 dir=$4
    shift 4
    rm -rf "$dir"
    "$BIN" train --train "$A/bal_train-0[0-6].tfrecord" --valid "$A/bal_train-07.tfrecord" \
        --frame-features audio_embedding:128 --id-key video_id --classes 527 --max-frames 10 --no-l2norm \
        --shuffle-buffer 20000 --hidden $AS_HIDDEN --lr "$lr" --batch $AS_BATCH --epochs "$epochs" --seed "$seed" \
        --out "$dir" --threads 1 --quiet "$@"
}

# torch_unpruned TEST_GLOB EPOCHS SEED [audioset_torch.py flags]: the same model, data and
# hyperparameters in PyTorch (experiments/audioset_torch.py), one thread
torch_unpruned() {
    test_glob=$1 epochs=$2 seed=$3
    shift 3
    $PY experiments/audioset_torch.py --train "$A/bal_train-0[0-6].tfrecord" --valid "$A/bal_train-07.tfrecord" \
        --test "$test_glob" --max-frames 10 --no-l2norm --hidden $AS_HIDDEN --lr $AS_LR --batch $AS_BATCH \
        --epochs "$epochs" --seed "$seed" --threads 1 "$@"
}
