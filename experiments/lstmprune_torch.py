#!/usr/bin/env python3
"""An lstmprune paper-model checkpoint (unpruned, or pruned to any unit counts) as a torch.nn.Module, and
its scores on AudioSet-layout data to set beside `lstmprune eval`'s (docs/REPRODUCING.md, "The pruned
model in PyTorch").

    experiments/lstmprune_torch.py CKPT --test GLOB [--bin build/lstmprune] [--threads N] [--out JSON]

The paper model is BiLSTM -> LSTM (its state after each clip's last valid frame) -> dense. A pruned
model's two BiLSTM directions usually keep different numbers of units, which nn.LSTM(bidirectional=True)
cannot hold, so each direction is its own nn.LSTM and the backward one reads each clip's valid frames in
reverse. Our one bias per LSTM goes to bias_ih (bias_hh = 0); the gate order (i, f, g, o) is PyTorch's.
Prints the parameter count and GAP@20, mAP, Hit@1 and PERR on the test data, read with the checkpoint's
own data settings (frames per clip, L2 normalisation) by audioset_torch.py's reader and scored by its
metric code, which reproduce lstmprune's; with --bin, `lstmprune eval`'s scores of the same checkpoint
beside them. From Python:

    from lstmprune_torch import load_model
    model = load_model("runs/x/pruned.ckpt")   # model(x [N, T, F], lengths [N]) -> logits [N, classes]
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from audioset_torch import evaluate, load, read_lstmprune_ckpt  # noqa: E402


def reverse_valid(x, lengths):
    """x [N, T, ...] with each row's first lengths[n] steps reversed in place of the originals (the
    padding after them stays). Applied twice it gives x back."""
    n, t = x.shape[:2]
    steps = torch.arange(t).expand(n, t)
    last = (lengths - 1).unsqueeze(1)
    idx = torch.where(steps <= last, last - steps, steps)
    return torch.gather(x, 1, idx.view(n, t, *([1] * (x.dim() - 2))).expand_as(x))


class PaperModel(nn.Module):
    """The paper model with any unit counts: forward and backward directions of sizes kf and kb, then an
    LSTM of k2 units and a dense layer to the classes."""

    def __init__(self, f, kf, kb, k2, classes):
        super().__init__()
        self.fw = nn.LSTM(f, kf, batch_first=True)
        self.bw = nn.LSTM(f, kb, batch_first=True)
        self.lstm2 = nn.LSTM(kf + kb, k2, batch_first=True)
        self.out = nn.Linear(k2, classes)

    def run(self, lstm, x, lengths):
        """lstm over each row's first lengths[n] steps: outputs [N, T, H] (0 after them)."""
        p = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(lstm(p)[0], batch_first=True, total_length=x.shape[1])
        return h

    def forward(self, x, lengths):
        hf = self.run(self.fw, x, lengths)
        hb = reverse_valid(self.run(self.bw, reverse_valid(x, lengths), lengths), lengths)
        p = pack_padded_sequence(torch.cat([hf, hb], 2), lengths, batch_first=True, enforce_sorted=False)
        _, (h2, _) = self.lstm2(p)  # packed: the state after each row's last valid step
        return self.out(h2[-1])


# our tensor names -> (the attribute of PaperModel, its parameter name)
NAMES = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b": "bias_ih_l0"}
GROUPS = {"bilstm.fw": "fw", "bilstm.bw": "bw", "lstm2": "lstm2"}


def load_model(path):
    """The PaperModel holding the weights of the lstmprune checkpoint at path, in eval mode."""
    t, kv = read_lstmprune_ckpt(path, meta=True)
    if kv.get("model.kind") != "paper":
        raise SystemExit("%s: model.kind is %s; only the paper model is supported" % (path, kv.get("model.kind")))
    units = [int(u) for u in kv["model.units"].split(",")]
    if len(units) != 3:
        raise SystemExit("%s: the paper model has 3 unit groups, model.units is %s" % (path, kv["model.units"]))
    model = PaperModel(int(kv["model.input_dim"]), *units, int(kv["model.classes"]))
    params = dict(model.named_parameters())
    seen = set()
    with torch.no_grad():
        for name, w in t.items():
            if name.startswith("opt."):
                continue
            group, _, leaf = name.rpartition(".")
            if name in ("out.w", "out.b"):
                target = "out." + {"w": "weight", "b": "bias"}[leaf]
            elif group in GROUPS and leaf in NAMES:
                target = GROUPS[group] + "." + NAMES[leaf]
            else:
                raise SystemExit("%s: unknown tensor %s" % (path, name))
            if tuple(params[target].shape) != w.shape:
                raise SystemExit("%s: %s is %s, the model wants %s" % (path, name, w.shape, tuple(params[target].shape)))
            params[target].copy_(torch.from_numpy(w))
            seen.add(target)
        for name, p in params.items():
            if name.endswith("bias_hh_l0"):
                p.zero_()  # our one bias is bias_ih
            elif name not in seen:
                raise SystemExit("%s: no tensor for %s" % (path, name))
    return model.eval()


def lstmprune_eval(binary, ckpt, test):
    """`lstmprune eval`'s scores of ckpt on the test shards (its key = value output)."""
    import subprocess
    out = subprocess.run([binary, "eval", "--checkpoint", ckpt, "--data", test, "--threads", "1", "--quiet",
                          "--out", "/dev/stdout"], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit("%s eval failed: %s" % (binary, out.stderr.strip()))
    kv = dict(line.split(" = ", 1) for line in out.stdout.splitlines() if " = " in line)
    return {k: float(kv[k]) for k in ("gap", "map", "hit1", "perr")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt")
    ap.add_argument("--test", required=True, help="test shards (glob; several separated by ';')")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bin", default=None, metavar="LSTMPRUNE",
                    help="also run `LSTMPRUNE eval` on the same checkpoint and data and print both")
    ap.add_argument("--out", default=None, help="also write the scores as JSON")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = load_model(a.ckpt)
    kv = read_lstmprune_ckpt(a.ckpt, meta=True)[1]
    # the checkpoint's own data settings, as `lstmprune eval` uses them
    if kv.get("data.frame_features") != "audio_embedding:128" or kv.get("data.id_key") != "video_id":
        raise SystemExit("%s: trained on %s; this reader knows AudioSet's layout (audio_embedding:128, "
                         "video_id)" % (a.ckpt, kv.get("data.frame_features")))
    x, lengths, y, _ = load(a.test, int(kv["model.classes"]), int(kv.get("data.max_frames", "300")),
                            int(kv["model.input_dim"]), l2norm=kv.get("data.l2norm", "1") != "0")
    # bias_hh is fixed at 0 and not counted: the parameters of the lstmprune checkpoint
    n_params = sum(p.numel() for n, p in model.named_parameters() if not n.endswith("bias_hh_l0"))
    m = evaluate(model, x, lengths, y)
    print("%s: units %s, %d parameters, %d test clips" % (a.ckpt, kv["model.units"], n_params, len(x)))
    ours = lstmprune_eval(a.bin, a.ckpt, a.test) if a.bin else None
    print("| metric | PyTorch |" + (" lstmprune | difference |" if ours else ""))
    print("|---|---:|" + ("---:|---:|" if ours else ""))
    for k, label in (("gap", "GAP@20"), ("map", "mAP"), ("hit1", "Hit@1"), ("perr", "PERR")):
        print("| %s | %.6f |" % (label, m[k]) + (" %.6f | %+.1e |" % (ours[k], m[k] - ours[k]) if ours else ""))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"ckpt": a.ckpt, "units": kv["model.units"], "parameters": n_params, "test": m,
                       "lstmprune": ours}, f, indent=1)


if __name__ == "__main__":
    main()
