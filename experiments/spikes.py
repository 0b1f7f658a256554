#!/usr/bin/env python3
"""Gradient spikes per run, ours beside PyTorch, and what they did to the score (docs/RESULTS.md).

    experiments/spikes.py DIR [--torch-steps DIR2[,DIR3...]] [--clip N] [--slow MAP]

DIR holds ours_seedS/train.tsv (`lstmprune train` logging every step; with eval.txt) and torch_seedS.json
(experiments/audioset_torch.py); PyTorch's step logs (--steps-out) are read as torch_seedS.tsv from
DIR/steps (default) or from the directories given with --torch-steps. A run counts on its side when it has
both a step log and a test score. Per side, prints: the largest (pre-clip) gradient norm of a run, median
and range; the runs whose largest norm exceeds 1e5; the runs with a giant spike, a step whose norm exceeds
1e4 times the median of the 256 steps before it (at least 32 before it: the rule of `lstmprune train`'s
spike watch, optim.h lp_grad_watch); with --clip N, the steps per run above N (the steps clipping
touched); the runs with test mAP below --slow (default 0.16); test mAP mean ± sd, and mAP of the runs
with and without a giant spike. Then, descriptive: the probability that a run of ours has the larger
peak (Mann-Whitney, with z) and per side the Spearman correlation of a run's peak with its test mAP.
Standard library only.
"""
import bisect
import csv
import glob
import json
import math
import os
import re
import statistics
import sys

from compare_torch import dir_and_options, rank_compare, read_eval, stats

WATCH_WINDOW, WATCH_MIN, SPIKE_FACTOR = 256, 32, 1e4  # optim.h: LP_GRAD_WATCH_WINDOW, _MIN, LP_GRAD_SPIKE_FACTOR


def norms(path):
    """The gradient norms of a step log, in step order."""
    with open(path) as f:
        rows = sorted((int(r["step"]), float(r["grad_norm"])) for r in csv.DictReader(f, delimiter="\t"))
    return [g for _, g in rows]


def giant_spikes(gs):
    """Steps (1-based positions) flagged by the trainer's spike watch: the norm exceeds SPIKE_FACTOR times
    the median of the previous WATCH_WINDOW norms, once WATCH_MIN norms were seen."""
    flagged, window = [], []  # window: the last norms, kept sorted
    for i, g in enumerate(gs):
        n = len(window)
        if n >= WATCH_MIN:
            med = window[n // 2] if n % 2 else 0.5 * (window[n // 2 - 1] + window[n // 2])
            if med > 0 and g > SPIKE_FACTOR * med:
                flagged.append(i + 1)
        if i >= WATCH_WINDOW:
            window.pop(bisect.bisect_left(window, gs[i - WATCH_WINDOW]))
        bisect.insort(window, g)
    return flagged


def spearman(a, b):
    """Spearman's rank correlation (average ranks for ties)."""
    def ranks(xs):
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        r = [0.0] * len(xs)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2 + 1
            i = j + 1
        return r
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    den = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return cov / den if den > 0 else float("nan")


def run_summary(gs, score, clip):
    return {"peak": max(gs), "giant": len(giant_spikes(gs)), "clipped": sum(g > clip for g in gs) if clip else 0,
            "map": score}


def load(d, torch_dirs, clip):
    """({seed: run summary} of ours, the same of PyTorch) for the runs with a step log and a test score."""
    ours, torch = {}, {}
    for p in glob.glob(os.path.join(d, "ours_seed*", "train.tsv")):
        ev = os.path.join(os.path.dirname(p), "eval.txt")
        if os.path.exists(ev):
            seed = int(re.search(r"ours_seed(\d+)", p).group(1))
            ours[seed] = run_summary(norms(p), read_eval(ev)["map"], clip)
    for td in torch_dirs:
        for p in glob.glob(os.path.join(td, "torch_seed*.tsv")):
            seed = int(re.search(r"torch_seed(\d+)\.tsv$", p).group(1))
            j = os.path.join(d, "torch_seed%d.json" % seed)
            if os.path.exists(j) and seed not in torch:
                torch[seed] = run_summary(norms(p), float(json.load(open(j))["test"]["map"]), clip)
    return ours, torch


def sci(x):
    """x as m.m·10^e (9960 as 1.0·10^4, not 10.0·10^3)."""
    m, e = ("%.1e" % x).split("e")
    return "%s·10^%d" % (m, int(e))


def side_column(runs, clip, slow):
    peaks = [r["peak"] for r in runs]
    maps = [r["map"] for r in runs]
    giant = [r["map"] for r in runs if r["giant"]]
    calm = [r["map"] for r in runs if not r["giant"]]
    mean, sd, _ = stats(maps)
    col = ["%s (%s – %s)" % (sci(statistics.median(peaks)), sci(min(peaks)), sci(max(peaks))),
           "%d" % sum(p > 1e5 for p in peaks),
           "%d" % sum(r["giant"] > 0 for r in runs)]
    if clip:
        cl = [r["clipped"] for r in runs]
        col.append("%g (%d – %d), %d in all" % (statistics.median(cl), min(cl), max(cl), sum(cl)))
    col += ["%d" % sum(m < slow for m in maps), "%.4f ± %.4f" % (mean, sd),
            "%.4f (%d runs)" % (statistics.mean(giant), len(giant)) if giant else "no run",
            "%.4f (%d runs)" % (statistics.mean(calm), len(calm)) if calm else "no run",
            "%+.2f" % spearman(peaks, maps) if len(runs) > 2 else ""]
    return col


def parse_args(argv):
    """(dir, torch step dirs, clip, slow) or a string saying what is wrong."""
    parsed = dir_and_options(argv, ("--torch-steps", "--clip", "--slow"))
    if parsed is None:
        return __doc__
    d, opts = parsed
    dirs = opts["--torch-steps"].split(",") if "--torch-steps" in opts else [os.path.join(d, "steps")]
    try:
        clip, slow = float(opts.get("--clip", 0)), float(opts.get("--slow", 0.16))
    except ValueError:
        return "spikes: --clip and --slow want numbers"
    if not clip >= 0:
        return "spikes: --clip wants a norm >= 0 (0: not clipped)"
    return d, dirs, clip, slow


def main(argv):
    args = parse_args(argv)
    if isinstance(args, str):
        print(args, file=sys.stderr)
        return 2
    d, dirs, clip, slow = args
    ours, torch = load(d, dirs, clip)
    if not ours or not torch:
        print("spikes: need runs of both sides with a step log and a score in %s (ours: %d, PyTorch: %d)"
              % (d, len(ours), len(torch)), file=sys.stderr)
        return 1
    rows = ["largest gradient norm, median (range)", "runs whose largest norm exceeds 10^5",
            "runs with a step over 10^4 × the median of the 256 before it"]
    if clip:
        rows.append("steps above the clip norm %g per run, median (range)" % clip)
    rows += ["runs with test mAP < %g" % slow, "test mAP, mean ± sd", "test mAP of the runs with such a step",
             "test mAP of the runs without", "Spearman correlation of the peak with test mAP"]
    cols = [side_column(list(ours.values()), clip, slow), side_column(list(torch.values()), clip, slow)]
    print("| per run | ours (%d runs) | PyTorch (%d runs) |" % (len(ours), len(torch)))
    print("|---|---:|---:|")
    for i, row in enumerate(rows):
        print("| %s | %s | %s |" % (row, cols[0][i], cols[1][i]))
    p, z, _ = rank_compare([r["peak"] for r in ours.values()], [r["peak"] for r in torch.values()])
    print("\nA run of ours has the larger peak with probability %.2f (Mann-Whitney z = %+.2f)." % (p, z))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
