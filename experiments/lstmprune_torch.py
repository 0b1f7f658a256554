#!/usr/bin/env python3
"""Any lstmprune checkpoint (every model kind and depth, unpruned or pruned to any unit counts) as a
torch.nn.Module, and its scores beside lstmprune's own (docs/REPRODUCING.md, "The pruned model in PyTorch";
the tensors are listed in docs/FORMATS.md, "Rebuilding a model from a checkpoint").

    experiments/lstmprune_torch.py CKPT --test GLOB [--bin build/lstmprune] [--threads N] [--out JSON]
    experiments/lstmprune_torch.py LM.ckpt --ptb DIR [--split test] [--bin build/lstmprune]

Video models (`model.kind` paper or lstm) are scored on frame-level shards read with the checkpoint's own
data settings (features and their order, frames per video, L2 normalisation, id key): GAP@20, mAP, Hit@1
and PERR by audioset_torch.py's metric code, which reproduces lstmprune's; with --bin, `lstmprune eval`'s
scores of the same checkpoint beside them. A language model (`model.kind` lm) is scored by its perplexity
on a PTB split, read with the checkpoint's vocabulary (rebuilt from DIR's training file and checked
against model.vocab_digest), beside `lstmprune lm-eval`'s with --bin.

The paper model is BiLSTM -> LSTM(s) (the last one's state after each video's last valid frame) -> dense.
A pruned model's two BiLSTM directions usually keep different numbers of units, which
nn.LSTM(bidirectional=True) cannot hold, so each direction is its own nn.LSTM and the backward one reads
each video's valid frames in reverse. Our one bias per LSTM goes to bias_ih (bias_hh = 0); the gate order
(i, f, g, o) is PyTorch's. From Python:

    from lstmprune_torch import load_model
    model = load_model("runs/x/pruned.ckpt")
    # video: model(x [N, T, F], lengths [N]) -> probabilities [N, classes]
    # LM:    model(ids [B, T], state) -> (logits [B, T, V], state)
"""
import argparse
import glob
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from audioset_torch import (DEQUANT, bytes_list, feature_map, fields, int64_list, metrics,  # noqa: E402
                            read_lstmprune_ckpt, tfrecords)


def reverse_valid(x, lengths):
    """x [N, T, ...] with each row's first lengths[n] steps reversed in place of the originals (the
    padding after them stays). Applied twice it gives x back."""
    n, t = x.shape[:2]
    steps = torch.arange(t).expand(n, t)
    last = (lengths - 1).unsqueeze(1)
    idx = torch.where(steps <= last, last - steps, steps)
    return torch.gather(x, 1, idx.view(n, t, *([1] * (x.dim() - 2))).expand_as(x))


def run_lstm(lstm, x, lengths):
    """lstm over each row's first lengths[n] steps: (outputs [N, T, H] (0 after them), the state after
    each row's last valid step [N, H])."""
    p = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, (h, _) = lstm(p)
    return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0], h[-1]


def stack(sizes):
    """nn.LSTMs of sizes[1:], each reading the one before it."""
    return nn.ModuleList(nn.LSTM(a, b, batch_first=True) for a, b in zip(sizes[:-1], sizes[1:]))


class PaperModel(nn.Module):
    """The paper model with any unit counts and depth: forward and backward directions of sizes kf and
    kb, then LSTMs of units[2:] and a dense layer to the classes."""

    def __init__(self, f, units, classes):
        super().__init__()
        kf, kb = units[0], units[1]
        self.fw = nn.LSTM(f, kf, batch_first=True)
        self.bw = nn.LSTM(f, kb, batch_first=True)
        self.lstms = stack([kf + kb] + list(units[2:]))
        self.out = nn.Linear(units[-1], classes)

    def forward(self, x, lengths):
        hf = run_lstm(self.fw, x, lengths)[0]
        hb = reverse_valid(run_lstm(self.bw, reverse_valid(x, lengths), lengths)[0], lengths)
        h = torch.cat([hf, hb], 2)
        for lstm in self.lstms:
            h, last = run_lstm(lstm, h, lengths)
        return torch.sigmoid(self.out(last))


class MoeModel(nn.Module):
    """The starter code's LstmModel: stacked LSTMs, then the mixture of experts on the last state
    (layers/moe.h: rows c(E+1)+j are class c's gates, rows C(E+1)+cE+e its experts)."""

    def __init__(self, f, units, classes, experts):
        super().__init__()
        self.c, self.e = classes, experts
        self.lstms = stack([f] + list(units))
        self.moe = nn.Linear(units[-1], classes * (2 * experts + 1))

    def forward(self, x, lengths):
        h = x
        for lstm in self.lstms:
            h, last = run_lstm(lstm, h, lengths)
        z = self.moe(last)
        n, c, e = z.shape[0], self.c, self.e
        gates = torch.softmax(z[:, :c * (e + 1)].view(n, c, e + 1), 2)
        experts = torch.sigmoid(z[:, c * (e + 1):].view(n, c, e))
        return (gates[:, :, :e] * experts).sum(2)


class LMModel(nn.Module):
    """The word-level LM: embedding -> stacked LSTMs -> softmax over the vocabulary (tied: the embedding
    table is the softmax weight)."""

    def __init__(self, vocab, embed, units, tied):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstms = stack([embed] + list(units))
        self.tied = tied
        self.out = nn.Linear(units[-1], vocab)
        if tied:
            del self.out.weight

    def forward(self, ids, state=None):
        h, new = self.embed(ids), []
        for i, lstm in enumerate(self.lstms):
            h, s = lstm(h, None if state is None else state[i])
            new.append(s)
        w = self.embed.weight if self.tied else self.out.weight
        return nn.functional.linear(h, w, self.out.bias), new


def lstm_targets(prefix, attr):
    """Our three tensors of the LSTM `prefix` -> the PyTorch parameters of the nn.LSTM at `attr`."""
    return {prefix + ".w_ih": attr + ".weight_ih_l0", prefix + ".w_hh": attr + ".weight_hh_l0",
            prefix + ".b": attr + ".bias_ih_l0"}


def build(path, kv):
    """(the empty model of the checkpoint's kind and sizes, our tensor name -> its parameter name)."""
    kind = kv.get("model.kind")
    units = [int(u) for u in kv["model.units"].split(",")]
    names = {}
    if kind == "paper":
        if len(units) < 3:
            raise SystemExit("%s: the paper model has at least 3 unit groups, model.units is %s" % (path, kv["model.units"]))
        model = PaperModel(int(kv["model.input_dim"]), units, int(kv["model.classes"]))
        names.update(lstm_targets("bilstm.fw", "fw"))
        names.update(lstm_targets("bilstm.bw", "bw"))
        for g in range(2, len(units)):  # units[g] is lstm<g>: lstm2, lstm3, ...
            names.update(lstm_targets("lstm%d" % g, "lstms.%d" % (g - 2)))
        names.update({"out.w": "out.weight", "out.b": "out.bias"})
    elif kind == "lstm":
        model = MoeModel(int(kv["model.input_dim"]), units, int(kv["model.classes"]), int(kv["model.experts"]))
        for g in range(len(units)):
            names.update(lstm_targets("lstm%d" % (g + 1), "lstms.%d" % g))
        names.update({"moe.w": "moe.weight", "moe.b": "moe.bias"})
    elif kind == "lm":
        tied = kv.get("model.tied", "0") == "1"
        model = LMModel(int(kv["model.vocab"]), int(kv["model.embed"]), units, tied)
        names["embed.w"] = "embed.weight"
        for g in range(len(units)):
            names.update(lstm_targets("lstm%d" % (g + 1), "lstms.%d" % g))
        names["out.b"] = "out.bias"
        if not tied:
            names["out.w"] = "out.weight"
    else:
        raise SystemExit("%s: unknown model.kind %s" % (path, kind))
    return model, names


def load_model(path):
    """The model holding the weights of the lstmprune checkpoint at path, in eval mode."""
    t, kv = read_lstmprune_ckpt(path, meta=True)
    model, names = build(path, kv)
    params = dict(model.named_parameters())
    seen = set()
    with torch.no_grad():
        for name, w in t.items():
            if name.startswith("opt.") or name.startswith("state."):
                continue  # optimizer state, the LM's carried recurrent state
            if name not in names:
                raise SystemExit("%s: unknown tensor %s" % (path, name))
            target = params[names[name]]
            if tuple(target.shape) != w.shape:
                raise SystemExit("%s: %s is %s, the model wants %s" % (path, name, w.shape, tuple(target.shape)))
            target.copy_(torch.from_numpy(w))
            seen.add(names[name])
        for name, p in params.items():
            if "bias_hh" in name:
                p.zero_()  # our one bias is bias_ih
            elif name not in seen:
                raise SystemExit("%s: no tensor for %s" % (path, name))
    return model.eval()


def n_parameters(model):
    """The parameters an lstmprune checkpoint holds: bias_hh (fixed at 0) not counted."""
    return sum(p.numel() for n, p in model.named_parameters() if "bias_hh" not in n)


# ---- video data with the checkpoint's settings --------------------------------------------------------

def feature_frames(flist):
    """The frames of one FeatureList: a list of float32 arrays (quantised bytes dequantised)."""
    out = []
    for fn, _, feature in fields(flist):
        if fn != 1:
            continue
        b = bytes_list(feature)
        if b:
            out.append(DEQUANT[np.frombuffer(b[0], dtype=np.uint8)])
            continue
        for ffn, _, fl in fields(feature):  # Feature.float_list (field 2) -> value (field 1, packed)
            if ffn == 2:
                for vfn, vwt, v in fields(fl):
                    if vfn == 1 and vwt == 2:
                        out.append(np.frombuffer(v, "<f4").copy())
    return out


def read_videos(patterns, kv):
    """(ids, x [N, T, F], lengths [N], labels [N, classes]) of the frame-level shards matching patterns,
    read as lstmprune reads them with the checkpoint's data.* keys (docs/FORMATS.md). Under
    data.padding = repeat every video is its last frame repeated up to max_frames and read whole, so its
    length is max_frames."""
    spec = [(f.split(":")[0], int(f.split(":")[1])) for f in kv.get("data.frame_features", "rgb:1024,audio:128").split(",")]
    id_key, classes = kv.get("data.id_key", "id"), int(kv["model.classes"])
    max_frames, l2 = int(kv.get("data.max_frames", "300")), kv.get("data.l2norm", "1") != "0"
    files = sorted(f for p in patterns.split(";") for f in glob.glob(p))
    if not files:
        raise SystemExit("no files match %s" % patterns)
    ids, xs, ys = [], [], []
    for path in files:
        for rec in tfrecords(path):
            context, flists = {}, {}
            for fn, _, v in fields(rec):
                if fn == 1:
                    context = feature_map(v)
                elif fn == 2:
                    flists = feature_map(v)
            per = [feature_frames(flists.get(name, b"")) for name, _ in spec]
            n = min(min(len(p) for p in per), max_frames)
            if n == 0:
                continue
            f = np.stack([np.concatenate([p[t] for p in per]) for t in range(n)])
            if l2:
                f = f / np.sqrt(np.maximum((f.astype(np.float64) ** 2).sum(1, keepdims=True), 1e-12)).astype(np.float32)
            ids.append(bytes_list(context[id_key])[0].decode() if id_key in context else "")
            xs.append(f.astype(np.float32))
            y = np.zeros(classes, dtype=np.float32)
            for c in int64_list(context.get("labels", b"")):
                if 0 <= c < classes:
                    y[c] = 1
            ys.append(y)
    repeat = kv.get("data.padding", "mask") == "repeat"
    T = max_frames if repeat else max(len(f) for f in xs)
    x = np.zeros((len(xs), T, xs[0].shape[1]), dtype=np.float32)
    for i, f in enumerate(xs):
        x[i, :len(f)] = f
        if repeat:
            x[i, len(f):] = f[-1]
    lengths = [T if repeat else len(f) for f in xs]
    return ids, torch.from_numpy(x), torch.tensor(lengths), torch.from_numpy(np.stack(ys))


def video_probs(model, x, lengths, batch=256):
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch], lengths[i:i + batch]) for i in range(0, len(x), batch)]).numpy()


# ---- PTB with the checkpoint's vocabulary ---------------------------------------------------------------

def ptb_words(path):
    """The words of a PTB file, every line ending in <eos> (lm/ptb.h)."""
    with open(path, "rb") as f:
        return [w for line in f.read().decode().splitlines() for w in line.split() + ["<eos>"]]


def ptb_vocab(path, max_words):
    """word -> id: the training file's words by count, most frequent first, ties by the word (TensorFlow's
    PTB reader), capped at max_words (0 = all) with <unk> always present (lm/ptb.h)."""
    counts = {}
    for w in ptb_words(path):
        counts[w] = counts.get(w, 0) + 1
    order = [w for w, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0].encode()))]
    if max_words > 0:
        order = order[:max_words]
    if "<unk>" not in order:
        order = order[:max_words - 1] if max_words > 0 and len(order) >= max_words else order
        order.append("<unk>")
    return {w: i for i, w in enumerate(order)}


def vocab_digest(vocab):
    """model.vocab_digest: 64-bit FNV-1a over the words in id order joined by newlines, started from
    lm/ptb.c's FNV_OFFSET 1469598103934665603 (the standard basis has one more digit, ...6037; the digests
    written into checkpoints use this one)."""
    h = 1469598103934665603
    for c in "\n".join(sorted(vocab, key=vocab.get)).encode():
        h = ((h ^ c) * 0x100000001b3) & ((1 << 64) - 1)
    return "%016x" % (h or 1)


def perplexity(model, ids, batch, bptt):
    """exp(mean NLL per target) with lstmprune's batching: `batch` contiguous streams of n // batch words,
    windows of bptt (the last one shorter), the state starting at zero and carried across windows."""
    n = len(ids) // batch
    data = torch.tensor(ids[:n * batch]).view(batch, n)
    state, nll, count = None, 0.0, 0
    with torch.no_grad():
        for t in range(0, n - 1, bptt):
            w = min(bptt, n - 1 - t)
            logits, state = model(data[:, t:t + w], state)
            nll += nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(),
                                               data[:, t + 1:t + 1 + w].reshape(-1), reduction="sum").item()
            count += batch * w
    return math.exp(nll / count)


def run(args):
    import subprocess
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit("%s failed: %s" % (" ".join(args[:2]), out.stderr.strip()))
    return out.stdout


def lstmprune_eval(binary, ckpt, test):
    """`lstmprune eval`'s scores of ckpt on the test shards (its key = value output)."""
    out = run([binary, "eval", "--checkpoint", ckpt, "--data", test, "--threads", "1", "--quiet", "--out", "/dev/stdout"])
    kv = dict(line.split(" = ", 1) for line in out.splitlines() if " = " in line)
    return {k: float(kv[k]) for k in ("gap", "map", "hit1", "perr")}


def lstmprune_lm_eval(binary, ckpt, ptb, split, batch, bptt):
    """`lstmprune lm-eval`'s perplexity of ckpt on one split."""
    out = run([binary, "lm-eval", "--checkpoint", ckpt, "--data", ptb, "--split", split, "--batch", str(batch),
               "--bptt", str(bptt), "--threads", "1"])
    for line in out.splitlines():
        if line.startswith(split + " ") and "perplexity" in line:
            return float(line.split("perplexity")[1].split()[0])
    raise SystemExit("no %s perplexity in lm-eval's output:\n%s" % (split, out))


def main_video(a, model, kv):
    ids, x, lengths, y = read_videos(a.test, kv)
    m = metrics(video_probs(model, x, lengths), y.numpy())
    print("%s: %s model, units %s, %d parameters, %d test videos" % (a.ckpt, kv["model.kind"], kv["model.units"],
                                                                     n_parameters(model), len(x)))
    ours = lstmprune_eval(a.bin, a.ckpt, a.test) if a.bin else None
    print("| metric | PyTorch |" + (" lstmprune | difference |" if ours else ""))
    print("|---|---:|" + ("---:|---:|" if ours else ""))
    for k, label in (("gap", "GAP@20"), ("map", "mAP"), ("hit1", "Hit@1"), ("perr", "PERR")):
        print("| %s | %.6f |" % (label, m[k]) + (" %.6f | %+.1e |" % (ours[k], m[k] - ours[k]) if ours else ""))
    return {"test": m, "lstmprune": ours, "videos": len(x)}


def main_lm(a, model, kv):
    vocab = ptb_vocab(os.path.join(a.ptb, "ptb.train.txt"), int(kv.get("data.max_words", "0")))
    if len(vocab) != int(kv["model.vocab"]) or ("model.vocab_digest" in kv and vocab_digest(vocab) != kv["model.vocab_digest"]):
        raise SystemExit("%s: the vocabulary of %s is not the checkpoint's" % (a.ckpt, a.ptb))
    unk = vocab["<unk>"]
    ids = [vocab.get(w, unk) for w in ptb_words(os.path.join(a.ptb, "ptb.%s.txt" % a.split))]
    ppl = perplexity(model, ids, a.batch, a.bptt)
    print("%s: LM, units %s, %d parameters, %s: %d words" % (a.ckpt, kv["model.units"], n_parameters(model), a.split, len(ids)))
    ours = lstmprune_lm_eval(a.bin, a.ckpt, a.ptb, a.split, a.batch, a.bptt) if a.bin else None
    print("| perplexity | PyTorch |" + (" lstmprune | difference |" if ours else ""))
    print("|---|---:|" + ("---:|---:|" if ours else ""))
    print("| %s | %.3f |" % (a.split, ppl) + (" %.3f | %+.1e |" % (ours, ppl - ours) if ours else ""))
    return {"split": a.split, "ppl": ppl, "lstmprune": ours}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt")
    ap.add_argument("--test", help="video models: frame-level test shards (glob; several separated by ';')")
    ap.add_argument("--ptb", help="LMs: the PTB directory (ptb.train.txt gives the vocabulary)")
    ap.add_argument("--split", default="test", help="LMs: train, valid or test [default: test]")
    ap.add_argument("--batch", type=int, default=20, help="LMs: parallel streams [default: 20]")
    ap.add_argument("--bptt", type=int, default=35, help="LMs: window length [default: 35]")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bin", default=None, metavar="LSTMPRUNE",
                    help="also score the checkpoint with LSTMPRUNE (eval / lm-eval) and print both")
    ap.add_argument("--out", default=None, help="also write the scores as JSON")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = load_model(a.ckpt)
    kv = read_lstmprune_ckpt(a.ckpt, meta=True)[1]
    lm = kv["model.kind"] == "lm"
    if (a.ptb if lm else a.test) is None:
        ap.error("%s holds a %s model: give %s" % (a.ckpt, kv["model.kind"], "--ptb DIR" if lm else "--test GLOB"))
    res = main_lm(a, model, kv) if lm else main_video(a, model, kv)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(dict(res, ckpt=a.ckpt, units=kv["model.units"], parameters=n_parameters(model)), f, indent=1)


if __name__ == "__main__":
    main()
