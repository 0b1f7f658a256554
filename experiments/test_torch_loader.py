#!/usr/bin/env python3
"""experiments/lstmprune_torch.py against lstmprune itself: every model kind and depth the project writes
is trained for one epoch on tiny data by the real binary ($LP_BIN), loaded into PyTorch, and scored on the
same inputs by both.

  video (synthetic YouTube-8M layout: rgb + audio bytes, id key `id`): the paper model with 1 and 2 LSTMs
  after the BiLSTM, a pruned paper model (BiLSTM directions of different sizes), the LSTM+MoE model, and
  a pruned LSTM+MoE: every class probability of every test video equals `predict --top C`'s (6 decimals);
  LM (a small PTB-format corpus whose test split has words outside the vocabulary): untied, tied, pruned:
  the mean NLL per target equals `lm-eval`'s (5 decimals), with lm-eval's batching.

Run by `make test` with Debian's python3-torch; exits non-zero on any failure.
"""
import math
import os
import random
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstmprune_torch import (load_model, ptb_vocab, ptb_words, perplexity, read_lstmprune_ckpt,  # noqa: E402
                             read_videos, video_probs)

BIN = os.environ.get("LP_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "lstmprune"))
FAILS = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        FAILS.append(what)


def lp(*args):
    out = subprocess.run([BIN] + list(args), capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("lstmprune %s failed (%d): %s" % (args[0], out.returncode, out.stderr.strip()))
    return out.stdout


def predict(ckpt, data, classes):
    """{video id: probabilities [classes]} from `lstmprune predict --top classes`."""
    out = {}
    for line in lp("predict", "--checkpoint", ckpt, "--data", data, "--top", str(classes), "--quiet",
                   "--out", "/dev/stdout").splitlines()[1:]:
        vid, pairs = line.split(",", 1)
        p, f = np.zeros(classes), pairs.split()
        for c, s in zip(f[0::2], f[1::2]):
            p[int(c)] = float(s)
        out[vid] = p
    return out


def check_video(ckpt, data, what):
    kv = read_lstmprune_ckpt(ckpt, meta=True)[1]
    classes = int(kv["model.classes"])
    model = load_model(ckpt)
    ids, x, lengths, _ = read_videos(data, kv)
    ours = video_probs(model, x, lengths)
    theirs = predict(ckpt, data, classes)
    check(sorted(theirs) == sorted(ids), "%s: the same %d videos" % (what, len(ids)))
    diff = max(np.abs(ours[i] - theirs[v]).max() for i, v in enumerate(ids) if v in theirs)
    # predict rounds to 6 decimals: 5e-7, plus float32 differences between the two implementations
    check(diff < 2e-6, "%s (units %s): every probability of %d videos x %d classes as predict's (max diff %.1e)"
          % (what, kv["model.units"], len(ids), classes, diff))
    check(ours.std() > 1e-3, "%s: the probabilities differ between videos and classes" % what)


def lm_eval_nll(ckpt, ptb, batch, bptt):
    out = lp("lm-eval", "--checkpoint", ckpt, "--data", ptb, "--split", "test", "--batch", str(batch),
             "--bptt", str(bptt))
    line = next(l for l in out.splitlines() if l.startswith("test "))
    return float(line.split("nll")[1].split()[0])


def check_lm(ckpt, ptb, what):
    kv = read_lstmprune_ckpt(ckpt, meta=True)[1]
    vocab = ptb_vocab(os.path.join(ptb, "ptb.train.txt"), 0)
    ids = [vocab.get(w, vocab["<unk>"]) for w in ptb_words(os.path.join(ptb, "ptb.test.txt"))]
    for batch, bptt in ((1, 9), (3, 7)):
        ours = math.log(perplexity(load_model(ckpt), ids, batch, bptt))
        theirs = lm_eval_nll(ckpt, ptb, batch, bptt)
        check(abs(ours - theirs) < 2e-5, "%s (units %s, batch %d, bptt %d): NLL %.6f, lm-eval's %.5f"
              % (what, kv["model.units"], batch, bptt, ours, theirs))


def write_ptb(d):
    r = random.Random(7)
    words = ["w%d" % i for i in range(40)]
    os.makedirs(d)
    for name, lines in (("train", 300), ("valid", 30), ("test", 40)):
        with open(os.path.join(d, "ptb.%s.txt" % name), "w") as f:
            for _ in range(lines):  # the test split also has words the training file lacks (<unk>)
                f.write(" " + " ".join(r.choice(words if name == "test" else words[:30])
                                       for _ in range(r.randint(3, 12))) + " \n")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        lp("synth", "--out", "d", "--videos", "60", "--classes", "12", "--frames-max", "40", "--quiet")
        train = ["--train", "d/train*.tfrecord", "--classes", "12", "--epochs", "1", "--hidden", "8",
                 "--batch", "8", "--quiet", "--threads", "1"]
        test = "d/test*.tfrecord"
        lp("train", *train, "--out", "paper1")
        lp("train", *train, "--layers", "2", "--out", "paper2")
        lp("train", *train, "--model", "lstm", "--experts", "3", "--out", "moe")
        # the public code's input: every video its last frame repeated to 50 steps, all read
        lp("train", *train, "--padding", "repeat", "--max-frames", "50", "--out", "paper-repeat")
        for run, rate in (("paper2", "0.3"), ("moe", "0.4")):  # 0.3: this paper model's directions keep 3 and 4
            lp("prune", "--checkpoint", run + "/last.ckpt", "--target-rate", rate, "--quiet", "--out", run + "-pruned")
        check_video("paper1/last.ckpt", test, "paper model, 1 LSTM")
        check_video("paper2/last.ckpt", test, "paper model, 2 LSTMs")
        check_video("paper2-pruned/pruned.ckpt", test, "pruned paper model")
        fw, bw = read_lstmprune_ckpt("paper2-pruned/pruned.ckpt", meta=True)[1]["model.units"].split(",")[:2]
        check(fw != bw, "the pruned BiLSTM's directions have different sizes (%s, %s)" % (fw, bw))
        check_video("moe/last.ckpt", test, "LSTM+MoE model")
        check_video("paper-repeat/last.ckpt", test, "paper model, repeat padding")
        check_video("moe-pruned/pruned.ckpt", test, "pruned LSTM+MoE model")

        write_ptb("ptb")
        lm = ["--data", "ptb", "--epochs", "1", "--batch", "4", "--bptt", "10", "--quiet"]
        lp("lm-train", *lm, "--units", "12,10", "--out", "lm")
        lp("lm-train", *lm, "--units", "10,8", "--embed", "8", "--tied", "--out", "lm-tied")
        lp("lm-prune", "--checkpoint", "lm/best.ckpt", "--target-rate", "0.4", "--finetune-epochs", "0", "--quiet",
           "--out", "lm-pruned")
        check_lm("lm/best.ckpt", "ptb", "LM")
        check_lm("lm-tied/best.ckpt", "ptb", "tied LM")
        check_lm("lm-pruned/pruned.ckpt", "ptb", "pruned LM")
    print("%d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
