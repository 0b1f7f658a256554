#!/usr/bin/python3
"""PyTorch counterpart of the paper model on the AudioSet embeddings (docs/RESULTS.md).

The same architecture, data, preprocessing, loss, optimiser and metrics as `lstmprune train` with
experiments/audioset.conf, written independently with torch.nn so that our C implementation can be
compared with a standard framework on real data:

    x [B,T,128] -> BiLSTM (H/2 per direction, lengths respected: pack_padded_sequence)
                -> LSTM (H, state after the last valid step) -> Linear (527 logits)
    loss: sum over classes of BCE-with-logits, mean over the batch; Adam; the epoch with the best
    validation GAP is kept (as our trainer's best.ckpt) and scored on the test data.

Data: TFRecord files of tf.train.SequenceExample, read here by a minimal pure-Python TFRecord framing
and protobuf wire-format parser (no TensorFlow): context `video_id` and `labels`, feature list
`audio_embedding` (one 128-byte string per frame). Dequantisation x = q*4/255 + 4/512 - 2, per-frame
L2 normalisation, at most --max-frames frames, padding by repeating the last frame (our defaults).

Metrics are those of eval/metrics.h (Google's starter code): GAP@k and mAP over each video's top-k
predictions (mAP = mean over classes with positives of the AP of that class's pooled top-k pairs,
divided by all positives of the class), Hit@1, PERR.

Usage (the paths and hyperparameters of scripts/audioset.sh):
    /usr/bin/python3 experiments/audioset_torch.py --train 'DIR/bal_train-0[0-6].tfrecord' \\
        --valid DIR/bal_train-07.tfrecord --test 'DIR/eval-0*.tfrecord' --hidden 512 --epochs 10 \\
        --lr 1e-3 --batch 64 --threads 2 --out results.json
"""
import argparse
import glob
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence


# ---- TFRecord + protobuf (wire format) -------------------------------------------------------------

def tfrecords(path):
    """Yield the data of each record (the CRCs are not checked here; `lstmprune inspect` checks them)."""
    with open(path, "rb") as f:
        buf = f.read()
    off = 0
    while off < len(buf):
        if off + 12 > len(buf):
            raise ValueError(f"{path}: truncated record header at byte {off}")
        (n,) = struct.unpack_from("<Q", buf, off)
        start = off + 12
        if start + n + 4 > len(buf):
            raise ValueError(f"{path}: record at byte {off} runs past the end")
        yield buf[start:start + n]
        off = start + n + 4


def varint(b, i):
    r = 0
    shift = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << shift
        if c < 0x80:
            return r, i
        shift += 7


def fields(b):
    """(field number, wire type, value) for each field of a message; value is bytes for type 2."""
    i, n = 0, len(b)
    while i < n:
        key, i = varint(b, i)
        fn, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            v = b[i:i + 8]
            i += 8
        elif wt == 2:
            ln, i = varint(b, i)
            v = b[i:i + ln]
            i += ln
        elif wt == 5:
            v = b[i:i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield fn, wt, v


def feature_map(b):
    """Features / FeatureLists message: map<string, value> (entry: 1 = key, 2 = value)."""
    out = {}
    for fn, wt, entry in fields(b):
        if fn != 1 or wt != 2:
            continue
        key, val = None, b""
        for efn, ewt, ev in fields(entry):
            if efn == 1:
                key = ev.decode()
            elif efn == 2:
                val = ev
        out[key] = val
    return out


def int64_list(feature):
    """Feature with int64_list (field 3): packed or not."""
    vals = []
    for fn, wt, v in fields(feature):
        if fn != 3:
            continue
        for lfn, lwt, lv in fields(v):
            if lfn != 1:
                continue
            if lwt == 2:
                i = 0
                while i < len(lv):
                    x, i = varint(lv, i)
                    vals.append(x - (1 << 64) if x >= 1 << 63 else x)
            else:
                vals.append(lv)
    return vals


def bytes_list(feature):
    for fn, wt, v in fields(feature):
        if fn == 1:
            return [lv for lfn, _, lv in fields(v) if lfn == 1]
    return []


def parse_sequence_example(b, id_key, labels_key, feature):
    context, flists = {}, {}
    for fn, wt, v in fields(b):
        if fn == 1:
            context = feature_map(v)
        elif fn == 2:
            flists = feature_map(v)
    vid = bytes_list(context[id_key])[0].decode() if id_key in context else ""
    labels = int64_list(context[labels_key]) if labels_key in context else []
    frames = []
    if feature in flists:
        for ffn, _, fv in fields(flists[feature]):
            if ffn == 1:
                frames.extend(bytes_list(fv))
    return vid, labels, frames


# x = q*4/255 + 4/512 - 2 computed in double and rounded once, the float values of lstmprune's table
# (data/yt8m.c). The same formula evaluated in float32 differs in 207 of the 256 levels by up to 2.4e-7.
DEQUANT = (np.arange(256) * 4.0 / 255.0 + 4.0 / 512.0 - 2.0).astype(np.float32)


def load(patterns, classes, max_frames, dim, l2norm=True):
    """(x [N, T, dim], lengths [N], labels [N, classes], clips per file in sorted file order)."""
    files = sorted(f for p in patterns.split(";") for f in glob.glob(p))
    if not files:
        sys.exit(f"no files match {patterns}")
    xs, lengths, ys, counts = [], [], [], []
    for path in files:
        counts.append(0)
        for rec in tfrecords(path):
            _, labels, frames = parse_sequence_example(rec, "video_id", "labels", "audio_embedding")
            if not frames:
                continue
            counts[-1] += 1
            frames = frames[:max_frames]
            q = np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), dim)
            xs.append(q)
            lengths.append(len(frames))
            y = np.zeros(classes, dtype=np.float32)
            for c in labels:
                if 0 <= c < classes:
                    y[c] = 1
            ys.append(y)
    T = max(lengths)
    x = np.zeros((len(xs), T, dim), dtype=np.float32)
    for i, q in enumerate(xs):
        f = DEQUANT[q]
        if l2norm:
            f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        x[i, :len(f)] = f
        x[i, len(f):] = f[-1]  # repeat padding
    return torch.from_numpy(x), torch.tensor(lengths, dtype=torch.int64), torch.from_numpy(np.stack(ys)), counts


# ---- lstmprune's training order (data/batcher.c), for paired runs ------------------------------------

M64 = (1 << 64) - 1


def mix64(x):
    """SplitMix64 finaliser (data/batcher.c): each epoch's shuffle seed is mix64(seed ^ mix64(epoch))."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


class Pcg32:
    """core/rng.c: PCG32 (XSH-RR), lp_rng_init / lp_rng_u32 / lp_rng_below."""

    def __init__(self, seed, stream):
        self.state, self.inc = 0, ((stream << 1) | 1) & M64
        self.u32()
        self.state = (self.state + seed) & M64
        self.u32()

    def u32(self):
        old = self.state
        self.state = (old * 6364136223846793005 + self.inc) & M64
        xs = (((old >> 18) ^ old) >> 27) & 0xFFFFFFFF
        rot = old >> 59
        return ((xs >> rot) | (xs << ((32 - rot) & 31))) & 0xFFFFFFFF

    def below(self, n):
        threshold = ((1 << 32) - n) % n
        while True:
            x = self.u32()
            if x >= threshold:
                return x % n


RNG_STREAM_SHUFFLE = 2  # core/rng.h


def lstmprune_order(counts, seed, epoch):
    """The clip order of epoch `epoch` (0-based) in `lstmprune train --seed seed` when the shuffle buffer
    holds the whole training set (--shuffle-buffer >= number of clips): the files are shuffled, read into
    the buffer in that order, then each clip is a uniform draw whose slot the buffer's last clip fills.
    counts[f] is the number of clips of the f-th file in sorted order; returns indices into load()'s rows."""
    r = Pcg32(mix64(seed ^ mix64(epoch)), RNG_STREAM_SHUFFLE)
    files = list(range(len(counts)))
    for i in range(len(files) - 1, 0, -1):
        j = r.below(i + 1)
        files[i], files[j] = files[j], files[i]
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int)
    buf = [int(first[f]) + k for f in files for k in range(counts[f])]
    order = []
    while buf:
        j = r.below(len(buf))
        order.append(buf[j])
        buf[j] = buf[-1]
        buf.pop()
    return torch.tensor(order, dtype=torch.int64)


# ---- model -----------------------------------------------------------------------------------------

class PaperModel(nn.Module):
    def __init__(self, f, hidden, classes):
        super().__init__()
        hf = (hidden + 1) // 2  # our forward half is rounded up
        if hf != hidden - hf:
            raise SystemExit("use an even --hidden (PyTorch's BiLSTM has equal directions)")
        self.bilstm = nn.LSTM(f, hf, batch_first=True, bidirectional=True)
        self.lstm2 = nn.LSTM(2 * hf, hidden, batch_first=True)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x, lengths):
        p = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        h1, _ = self.bilstm(p)
        _, (h2, _) = self.lstm2(h1)  # packed: h2 is the state after each sequence's last valid step
        return self.out(h2[-1])


def read_lstmprune_ckpt(path, meta=False):
    """The tensors of an lstmprune checkpoint in file order (docs/FORMATS.md; CRCs not checked here);
    with meta=True also its `key = value` meta block as a dict."""
    b = open(path, "rb").read()
    if b[:8] != b"LSTMPRN\x1a" or struct.unpack_from("<I", b, 8)[0] != 1:
        raise SystemExit("%s: not an lstmprune checkpoint of format version 1" % path)
    meta_len, n = struct.unpack_from("<QI", b, 16)
    pos, tensors = 32 + meta_len + 4, {}
    for _ in range(n):
        (L,) = struct.unpack_from("<H", b, pos)
        name = b[pos + 2:pos + 2 + L].decode()
        pos += 2 + L
        rank = b[pos + 1]
        pos += 2
        dims = struct.unpack_from("<%dI" % rank, b, pos)
        pos += 4 * rank
        off, nbytes, _crc = struct.unpack_from("<QQI", b, pos)
        pos += 20
        tensors[name] = np.frombuffer(b, "<f4", nbytes // 4, off).reshape(dims).copy()
    if not meta:
        return tensors
    kv = dict(line.split(" = ", 1) for line in b[32:32 + meta_len].decode().splitlines() if " = " in line)
    return tensors, kv


# Our tensor names, in checkpoint order, and where each lives in the PyTorch model. Our one LSTM bias `b`
# maps to nn.LSTM's pair: b_ih + b_hh = b.
LSTMS = (("bilstm.fw", "bilstm", "_l0"), ("bilstm.bw", "bilstm", "_l0_reverse"), ("lstm2", "lstm2", "_l0"))


def torch_params(model, ours, w, path):
    """The PyTorch parameters that carry our tensor `ours` (two for an LSTM bias: b_ih and b_hh), after
    checking that our values `w` (read from `path`) have their shape."""
    ps = None
    if ours.startswith("out."):
        ps = [getattr(model.out, {"out.w": "weight", "out.b": "bias"}[ours])]
    for prefix, attr, sfx in LSTMS:
        if ours.startswith(prefix + "."):
            lstm, src = getattr(model, attr), ours[len(prefix) + 1:]
            if src == "b":
                ps = [getattr(lstm, "bias_ih" + sfx), getattr(lstm, "bias_hh" + sfx)]
            else:
                ps = [getattr(lstm, {"w_ih": "weight_ih", "w_hh": "weight_hh"}[src] + sfx)]
    if ps is None:
        raise SystemExit("%s: unknown tensor %s" % (path, ours))
    if tuple(ps[0].shape) != w.shape:
        raise SystemExit("%s: %s is %s, the PyTorch model wants %s" % (path, ours, w.shape, tuple(ps[0].shape)))
    return ps


def resume_lstmprune(model, opt, path):
    """Continue an lstmprune run trained with `--bias-init pair --bias-lr-mult 2` (nn.LSTM's own bias
    parametrisation) from its last.ckpt: weights, Adam's m and v (opt.m / opt.v hold every parameter in
    checkpoint order) and step count. Each bias b becomes b_ih = b_hh = b/2 (exact in binary floating
    point), and both take b's m and v: under Adam they get the same gradient as b and move by the same
    step, so their sum moves as b does at twice the learning rate. Returns the checkpoint's meta."""
    t, kv = read_lstmprune_ckpt(path, meta=True)
    if "opt.m" not in t or kv.get("train.optimizer") != "adam":
        raise SystemExit("%s: no Adam state (was the run trained with --optimizer adam?)" % path)
    if kv.get("train.bias_init") != "pair" or float(kv.get("train.bias_lr_mult", "1")) != 2.0:
        raise SystemExit("%s: trained with one bias per LSTM at 1x; resuming as nn.LSTM needs a run with "
                         "--bias-init pair --bias-lr-mult 2" % path)
    m, v, off, step = t.pop("opt.m"), t.pop("opt.v"), 0, int(kv["state.opt_t"])
    with torch.no_grad():
        for name, w in t.items():
            ps, n = torch_params(model, name, w, path), w.size
            val = torch.from_numpy(w) / len(ps)
            for p in ps:
                p.copy_(val)
                opt.state[p] = {"step": torch.tensor(float(step)),
                                "exp_avg": torch.from_numpy(m[off:off + n].reshape(w.shape).copy()).to(p.dtype),
                                "exp_avg_sq": torch.from_numpy(v[off:off + n].reshape(w.shape).copy()).to(p.dtype)}
            off += n
    if off != m.size:
        raise SystemExit("%s: optimizer state has %d values, the tensors %d" % (path, m.size, off))
    return kv


def grad_norm(model, count_bias_hh=True):
    """Global gradient norm; count_bias_hh=False counts each LSTM's bias gradient once, as our train.tsv
    does for its one bias (b_ih and b_hh have the same gradient)."""
    return math.sqrt(sum(float((p.grad.double() ** 2).sum()) for n, p in model.named_parameters()
                         if p.grad is not None and (count_bias_hh or not n.split(".")[-1].startswith("bias_hh"))))


def load_lstmprune(model, path):
    """Copy an lstmprune paper model's weights into `model` (gate order i, f, g, o on both sides; our one
    bias per LSTM goes to bias_ih, bias_hh is zeroed)."""
    t = read_lstmprune_ckpt(path)
    with torch.no_grad():
        for name, w in t.items():
            if name.startswith("opt."):
                continue
            ps = torch_params(model, name, w, path)
            ps[0].copy_(torch.from_numpy(w))
            for p in ps[1:]:
                p.zero_()


# ---- metrics (eval/metrics.h) ------------------------------------------------------------------------

def ap_pool(scores, pos, n_pos):
    if n_pos == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    p = pos[order].astype(np.float64)
    hits = np.cumsum(p)
    ranks = np.arange(1, len(p) + 1)
    return float(np.sum(p * hits / ranks) / n_pos)


def metrics(probs, labels, top_k=20):
    n, c = probs.shape
    k = min(top_k, c)
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    sc = np.take_along_axis(probs, top, axis=1)
    ps = np.take_along_axis(labels, top, axis=1) > 0
    gap = ap_pool(sc.ravel(), ps.ravel(), labels.sum())
    cls = top.ravel()
    aps = []
    class_pos = labels.sum(axis=0)
    flat_sc, flat_ps = sc.ravel(), ps.ravel()
    for j in range(c):
        if class_pos[j] == 0:
            continue
        sel = cls == j
        aps.append(ap_pool(flat_sc[sel], flat_ps[sel], class_pos[j]))
    hit1 = float(np.mean(labels[np.arange(n), top[:, 0]] > 0))
    perr = 0.0
    for i in range(n):
        m = int(labels[i].sum())
        if m == 0:
            continue
        best = np.argsort(-probs[i], kind="stable")[:m]
        perr += np.sum((labels[i, best] > 0) & (probs[i, best] > 0)) / m
    return {"gap": gap, "map": float(np.mean(aps)) if aps else 0.0, "hit1": hit1, "perr": perr / n}


def evaluate(model, x, lengths, y, batch=256):
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(torch.sigmoid(model(x[i:i + batch], lengths[i:i + batch])))
    return metrics(torch.cat(out).numpy(), y.numpy())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True)
    ap.add_argument("--valid", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--classes", type=int, default=527)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--max-frames", type=int, default=300)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-l2norm", action="store_true", help="do not L2-normalise each frame (lstmprune --no-l2norm)")
    ap.add_argument("--single-bias", action="store_true",
                    help="one trainable bias per LSTM (the second fixed at 0), as lstmprune's LSTM")
    ap.add_argument("--init-from", default=None, metavar="CKPT",
                    help="start from the weights of an lstmprune checkpoint (implies --single-bias): the same "
                         "model, parametrisation and initial values as ours, so only the training path differs")
    ap.add_argument("--order", choices=["torch", "lstmprune"], default="torch",
                    help="torch: torch.randperm per epoch; lstmprune: exactly the clip order of `lstmprune train "
                         "--seed S --shuffle-buffer N` with N >= the training clips (with --init-from: a paired "
                         "run, the same start and the same batches as ours)")
    ap.add_argument("--resume-from", default=None, metavar="CKPT",
                    help="continue an lstmprune run (trained with --bias-init pair --bias-lr-mult 2) from its "
                         "last.ckpt: its weights, Adam state, step, seed and batch order, from the batch where "
                         "it stopped (a replay: the same state, then both implementations train on)")
    ap.add_argument("--clip", type=float, default=0.0, metavar="NORM",
                    help="clip the global gradient norm to NORM (torch.nn.utils.clip_grad_norm_, as lstmprune's "
                         "--clip; 0 = off)")
    ap.add_argument("--float64", action="store_true",
                    help="train in double precision (a control: how fast fp32 rounding alone moves a run away)")
    ap.add_argument("--steps-out", default=None, metavar="TSV",
                    help="write step, epoch, loss and global gradient norm of every step (the columns of our "
                         "train.tsv) here")
    ap.add_argument("--threads", type=int, default=1,
                    help="intra-op threads (1: on a loaded 2-core machine more threads make PyTorch's LSTM 10x slower)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    a = ap.parse_args()
    if a.resume_from and (a.init_from or a.single_bias):
        ap.error("--resume-from continues a run with nn.LSTM's two biases: not with --init-from or --single-bias")
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    t0 = time.time()
    tr, va, te = (load(p, a.classes, a.max_frames, a.dim, not a.no_l2norm) for p in (a.train, a.valid, a.test))
    print(f"data: train {len(tr[0])}, valid {len(va[0])}, test {len(te[0])} clips ({time.time() - t0:.1f} s)", flush=True)
    model = PaperModel(a.dim, a.hidden, a.classes)
    if a.init_from:
        a.single_bias = True
        load_lstmprune(model, a.init_from)
    if a.single_bias:
        # One bias vector per LSTM, as in lstmprune (and Keras): nn.LSTM's second bias is fixed at zero, so
        # the bias is not learned at twice the rate (Adam moves both of PyTorch's biases by ~lr per step).
        for lstm in (model.bilstm, model.lstm2):
            for name, p in lstm.named_parameters():
                if name.startswith("bias_hh"):
                    p.data.zero_()
                    p.requires_grad_(False)
    if a.float64:
        model = model.double()
        tr, va, te = ((d[0].double(), d[1], d[2].double(), d[3]) for d in (tr, va, te))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=a.lr)
    first_epoch, skip, step = 1, 0, 0
    if a.resume_from:
        kv = resume_lstmprune(model, opt, a.resume_from)
        for key, have in (("train.batch", a.batch), ("train.lr", a.lr), ("train.seed", a.seed)):
            if float(kv[key]) != float(have):
                raise SystemExit("--resume-from: the run has %s = %s, this command %s" % (key, kv[key], have))
        if float(kv.get("train.clip", "0")) != a.clip:
            print("note: the run was trained with train.clip = %s; it continues with --clip %g"
                  % (kv.get("train.clip", "0"), a.clip), flush=True)
        a.order = "lstmprune"
        first_epoch, skip, step = int(kv["state.epoch"]) + 1, int(kv["state.batch"]) * a.batch, int(kv["state.step"])
        print(f"resumed {a.resume_from}: step {step}, epoch {first_epoch} from batch {skip // a.batch + 1}", flush=True)
    lossf = nn.BCEWithLogitsLoss(reduction="sum")
    g = torch.Generator().manual_seed(a.seed)
    steps = open(a.steps_out, "w") if a.steps_out else None
    if steps:
        steps.write("step\tepoch\tloss\tgrad_norm\n")
    best, best_state, curve = -1.0, None, []
    t_train = time.time()
    for ep in range(first_epoch, a.epochs + 1):
        model.train()
        if a.order == "lstmprune":
            perm = lstmprune_order(tr[3], a.seed, ep - 1)
        else:
            perm = torch.randperm(len(tr[0]), generator=g)
        if ep == first_epoch:
            perm = perm[skip:]
        tot, nb, te0 = 0.0, 0, time.time()
        for i in range(0, len(perm), a.batch):
            idx = perm[i:i + a.batch]
            opt.zero_grad()
            loss = lossf(model(tr[0][idx], tr[1][idx]), tr[2][idx]) / len(idx)
            loss.backward()
            step += 1
            if steps:
                gn = grad_norm(model, count_bias_hh=not a.resume_from)
                steps.write("%d\t%d\t%.6f\t%.6f\n" % (step, ep, loss.item(), gn))
            if a.clip > 0:
                nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], a.clip)
            opt.step()
            tot += loss.item()
            nb += 1
        secs = time.time() - te0
        m = evaluate(model, *va[:3])
        curve.append({"epoch": ep, "loss": tot / nb, "seconds": secs, **m})
        print(f"epoch {ep}: loss {tot / nb:.4f} ({secs:.1f} s)  valid GAP {m['gap']:.4f} mAP {m['map']:.4f} "
              f"Hit@1 {m['hit1']:.4f}", flush=True)
        if m["gap"] > best:
            best = m["gap"]
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    train_s = time.time() - t_train
    if steps:
        steps.close()
    model.load_state_dict(best_state)
    m = evaluate(model, *te[:3])
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"test (best validation epoch): GAP@20 {m['gap']:.4f} mAP {m['map']:.4f} Hit@1 {m['hit1']:.4f} "
          f"PERR {m['perr']:.4f}; parameters {params}; training {train_s:.0f} s")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"args": vars(a), "torch": torch.__version__, "parameters": params, "test": m,
                       "curve": curve, "train_seconds": train_s}, f, indent=1)


if __name__ == "__main__":
    main()
