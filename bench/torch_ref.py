#!/usr/bin/python3
"""torch_ref: the PyTorch peer of bench/bench_train.c — the same paper model, shapes, threads and figures.

    x [B,T,F] -> BiLSTM (H/2 per direction, outputs concatenated per step)
              -> LSTM (H units), its state after the last step
              -> dense C logits; loss = sigmoid BCE summed over classes, mean over the batch; Adam lr 2e-4

The only difference to our model is PyTorch's second LSTM bias (b_ih + b_hh, 8H instead of 4H floats per
layer): a few KB, no measurable time. Data are random tensors in memory (like bench_train's "random" phase),
so the step time is the model's alone.

Per shape, in a fresh process (so that ru_maxrss is that shape's peak):
    warm-up step(s), then `steps` timed training steps (forward, backward, Adam step) -> best ms/step and
    frames/s (B*T / step), peak RSS (resource.getrusage ru_maxrss), inference latency at batch 1 and
    batch 160 (torch.no_grad(), median of reps after one warm-up).
Output: one line per shape, `result: side=torch shape=... key=value ...`, joined with bench_train's lines
into one table by bench/table.py.

Threads: torch.set_num_threads(--threads, default OMP_NUM_THREADS or the CPU count); the GEMMs run in
the system OpenBLAS (Debian's python3-torch links libblas.so.3), whose thread count the Makefile sets
with OPENBLAS_NUM_THREADS to the same number. OMP_WAIT_POLICY defaults to PASSIVE (see main()). Run with
the system interpreter: /usr/bin/python3.

    /usr/bin/python3 bench/torch_ref.py [--shapes small,big] [--precision fp32,bf16] [--threads N] [--steps N]

bf16: the same model cast to bfloat16 (torch's bf16 matmuls; weights and Adam state in bf16 too).
"""
import argparse
import os
import resource
import subprocess
import sys
import time

# The shapes of bench_train.c (name: H, B, T); F = 1152 (rgb + audio), C = 3862 (YouTube-8M 2018).
SHAPES = {
    "small": dict(H=256, B=32, T=100, steps=5, warmup=1, reps1=5, reps160=3),
    "big": dict(H=1024, B=160, T=300, steps=2, warmup=1, reps1=3, reps160=1),
}
F, C = 1152, 3862


def run_shape(name, threads, steps_override, precision):
    import torch
    import torch.nn as nn

    torch.set_num_threads(threads)
    s = SHAPES[name]
    H, B, T = s["H"], s["B"], s["T"]
    steps = steps_override or s["steps"]
    torch.manual_seed(1)

    class Paper(nn.Module):
        def __init__(self):
            super().__init__()
            self.bilstm = nn.LSTM(F, H // 2, batch_first=True, bidirectional=True)
            self.lstm2 = nn.LSTM(H, H, batch_first=True)
            self.out = nn.Linear(H, C)

        def forward(self, x):
            y, _ = self.bilstm(x)          # [B,T,H]: forward ++ backward direction per step
            _, (h, _) = self.lstm2(y)       # h [1,B,H]: state after the last step
            return self.out(h[-1])          # [B,C] logits

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = Paper().to(dtype)  # bf16: the same model cast to bfloat16 (weights, activations, Adam state)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    bce = nn.BCEWithLogitsLoss(reduction="none")
    x = (torch.rand(B, T, F) * 0.2 - 0.1).to(dtype)
    y = (torch.rand(B, C) < 0.001).to(dtype)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = bce(model(x), y).sum(dim=1).mean()
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(s["warmup"]):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    best = min(times)

    def latency(batch, reps):
        xi = (torch.rand(batch, T, F) * 0.2 - 0.1).to(dtype)
        ts = []
        with torch.no_grad():
            model(xi)  # warm-up
            for _ in range(reps):
                t0 = time.perf_counter()
                model(xi)
                ts.append(time.perf_counter() - t0)
        ts.sort()
        return 1e3 * ts[len(ts) // 2]

    lat1 = latency(1, s["reps1"])
    lat160 = latency(160, s["reps160"])
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    fields = [
        ("side", "torch"), ("shape", name), ("precision", precision), ("H", H), ("B", B), ("T", T), ("F", F), ("C", C),
        ("threads", threads), ("steps", steps), ("step_ms", "%.1f" % (1e3 * best)),
        ("frames_per_s", "%.0f" % (B * T / best)), ("rss_mb", "%.0f" % rss_mb),
        ("infer_b1_ms", "%.2f" % lat1), ("infer_b160_ms", "%.1f" % lat160),
        ("version", torch.__version__),
    ]
    print("result: " + " ".join("%s=%s" % kv for kv in fields), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", default="small,big", help="comma-separated: small (H=256,B=32,T=100), big (H=1024,B=160,T=300)")
    default_threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    ap.add_argument("--threads", type=int, default=default_threads)
    ap.add_argument("--steps", type=int, default=0, help="timed steps (default: per shape, 5 small / 2 big)")
    ap.add_argument("--precision", default="fp32,bf16", help="comma-separated: fp32, bf16 (the model cast to bfloat16)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    names = [n for n in a.shapes.split(",") if n]
    for n in names:
        if n not in SHAPES:
            ap.error("unknown shape %r (known: %s)" % (n, ", ".join(SHAPES)))
    precs = [p for p in a.precision.split(",") if p]
    for p in precs:
        if p not in ("fp32", "bf16"):
            ap.error("unknown precision %r (fp32, bf16)" % p)
    if a.child:
        run_shape(names[0], a.threads, a.steps, precs[0])
        return 0
    # PyTorch's idle OpenMP workers spin by default (libgomp's active wait policy) while OpenBLAS's own
    # threads need the same cores for the GEMMs: measured here, that makes PyTorch 4x slower. We give the
    # peer its better setting (set before the children import torch; an explicit value is kept).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch
    print("torch_ref: PyTorch %s, %d threads, OPENBLAS_NUM_THREADS=%s, OMP_NUM_THREADS=%s, OMP_WAIT_POLICY=%s" % (
        torch.__version__, a.threads, os.environ.get("OPENBLAS_NUM_THREADS", "(unset)"),
        os.environ.get("OMP_NUM_THREADS", "(unset)"), os.environ["OMP_WAIT_POLICY"]), flush=True)
    for n in names:  # one process per shape and precision: ru_maxrss is a per-process high-water mark
        for p in precs:
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--shapes", n, "--precision", p,
                                "--threads", str(a.threads), "--steps", str(a.steps)])
            if r.returncode != 0:
                print("torch_ref: shape %s %s failed (exit %d)" % (n, p, r.returncode), file=sys.stderr)
                return 1
            print("torch_ref: shape %s %s took %.0f s" % (n, p, time.perf_counter() - t0), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
