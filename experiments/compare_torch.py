#!/usr/bin/env python3
"""Our unpruned model against the PyTorch counterpart, seed by seed (scripts/audioset_vs_torch.sh).

    experiments/compare_torch.py DIR [--margin M] [--level P] [--seeds LIST]

DIR holds ours_seedS/eval.txt (`lstmprune eval --out`) and torch_seedS.json (experiments/audioset_torch.py)
for the same seeds S, and optionally torch_ourinit_seedS.json (audioset_torch.py --init-from the initial
weights of our seed S) and torch_paired_seedS.json (the same with --order lstmprune: our batches too).
Prints markdown tables: every seed's GAP@20 and mAP on the test data for each side; then each side's mean ± sample standard deviation of GAP@20, mAP, Hit@1 and PERR, and the
differences of the means (ours - the other side, over the seeds both ran) with their standard errors; then
ours against PyTorch as it comes over every run of each side (the two are independent draws, so no seed
needs a partner): the difference, Welch's standard error and degrees of freedom, and the one-sided 95%
lower bound of the difference (ours >= PyTorch - margin is shown for every margin above -bound); with
--margin M a last column says whether that holds for M (a non-inferiority test at margin M, one-sided 95%);
then, descriptive only, the same runs rank-based: medians, the probability that a run of ours scores above a
run of PyTorch (Mann-Whitney's U / n1 n2, with its z), and the Hodges-Lehmann shift.
--level P sets the one-sided confidence level of that bound (default 0.95; e.g. 0.975 for a second look at
the same question, the 5% error rate split over two looks). --seeds LIST (e.g. 1-28 or 29-80,90) keeps only
those seeds of ours; PyTorch's runs are all used. Standard library only.
"""
import glob
import json
import math
import os
import re
import statistics
import sys

METRICS = ["gap", "map", "hit1", "perr"]


def read_eval(path):
    d = {}
    for line in open(path):
        m = re.match(r"\s*(\w+)\s*=\s*(\S+)", line)
        if m:
            d[m.group(1)] = m.group(2)
    return {k: float(d[k]) for k in METRICS}


def stats(xs):
    n = len(xs)
    mean = sum(xs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else float("nan")
    return mean, sd, sd / math.sqrt(n) if n > 1 else float("nan")


def betainc(a, b, x):
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (modified Lentz;
    Numerical Recipes 6.4), on the side of x where the fraction converges fast."""
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - betainc(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 1000):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * f


def t_cdf(x, df):
    """P(T <= x) for Student's t with df (possibly fractional) degrees of freedom."""
    tail = 0.5 * betainc(df / 2, 0.5, df / (df + x * x))
    return 1.0 - tail if x >= 0 else tail


def t_quantile(p, df):
    """Quantile p (> 0.5) of Student's t with df degrees of freedom: t_cdf inverted by bisection."""
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return 0.5 * (lo + hi)


def welch(a, b):
    """(mean(a) - mean(b), its standard error, Welch-Satterthwaite degrees of freedom)."""
    (ma, _, sa), (mb, _, sb) = stats(a), stats(b)
    va, vb = sa * sa, sb * sb
    if va + vb == 0:  # both sides constant: the difference is exact (the pooled df, for the t quantile)
        return ma - mb, 0.0, float(len(a) + len(b) - 2)
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    return ma - mb, math.sqrt(va + vb), df


def rank_compare(a, b):
    """(P(x > y) for x from a and y from b, ties counting half; the Mann-Whitney z of that, normal
    approximation without tie correction; the Hodges-Lehmann shift: the median of all differences x - y)."""
    diffs = [x - y for x in a for y in b]
    u = sum(d > 0 for d in diffs) + 0.5 * sum(d == 0 for d in diffs)
    n1, n2 = len(a), len(b)
    z = (u - n1 * n2 / 2) / math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    return u / (n1 * n2), z, statistics.median(diffs)


def parse_seeds(text):
    """'1-28,31' -> {1, ..., 28, 31}; None if the text is not such a list."""
    seeds = set()
    for part in text.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if not m:
            return None
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            return None
        seeds.update(range(lo, hi + 1))
    return seeds


def dir_and_options(argv, allowed):
    """`PROG DIR [--OPTION VALUE]...` -> (DIR, {option: value}), or None when the words are not that or
    an option is not in `allowed` (or given twice)."""
    if len(argv) < 2 or len(argv) % 2:
        return None
    opts = dict(zip(argv[2::2], argv[3::2]))
    if len(opts) != len(argv[2:]) // 2 or not set(opts) <= set(allowed):
        return None
    return argv[1], opts


def parse_args(argv):
    """(dir, margin or None, level, seeds or None), or a string saying what is wrong."""
    parsed = dir_and_options(argv, ("--margin", "--level", "--seeds"))
    if parsed is None:
        return __doc__
    d, opts = parsed
    margin, level, seeds = None, 0.95, None
    if "--margin" in opts:
        try:
            margin = float(opts["--margin"])
        except ValueError:
            margin = -1.0
        if not margin >= 0:
            return "compare_torch: --margin wants a number >= 0, got '%s'" % opts["--margin"]
    if "--level" in opts:
        try:
            level = float(opts["--level"])
        except ValueError:
            level = 0.0
        if not 0.5 < level < 1:
            return "compare_torch: --level wants a confidence level between 0.5 and 1, got '%s'" % opts["--level"]
    if "--seeds" in opts:
        seeds = parse_seeds(opts["--seeds"])
        if not seeds:
            return "compare_torch: --seeds wants a list like 1-28,31, got '%s'" % opts["--seeds"]
    return d, margin, level, seeds


def main(argv):
    args = parse_args(argv)
    if isinstance(args, str):
        print(args, file=sys.stderr)
        return 2
    d, margin, level, keep = args
    sides = [("ours (lstmprune)", {}), ("PyTorch", {}), ("PyTorch from our initial weights", {}),
             ("PyTorch from our initial weights on our batches", {})]
    for p in glob.glob(os.path.join(d, "ours_seed*", "eval.txt")):
        seed = int(re.search(r"ours_seed(\d+)", p).group(1))
        if keep is None or seed in keep:
            sides[0][1][seed] = read_eval(p)
    version, params = "?", "?"
    for i, pat in ((1, r"torch_seed(\d+)\.json$"), (2, r"torch_ourinit_seed(\d+)\.json$"),
                   (3, r"torch_paired_seed(\d+)\.json$")):
        for p in glob.glob(os.path.join(d, "torch_*seed*.json")):
            m = re.search(pat, p)
            if not m:
                continue
            j = json.load(open(p))
            sides[i][1][int(m.group(1))] = {k: float(j["test"][k]) for k in METRICS}
            if i == 1:
                version, params = j.get("torch", "?"), j.get("parameters", "?")
    sides[1] = ("PyTorch %s" % version, sides[1][1])
    sides = [sd for sd in sides if sd[1]]
    if len(sides) < 2 or not set(sides[0][1]) & set(sides[1][1]):
        print("compare_torch: no seed with both ours_seedS/eval.txt and torch_seedS.json in %s" % d, file=sys.stderr)
        return 1
    # one row per seed: GAP@20 and mAP of every side (Hit@1 and PERR only in the summary below)
    short = {"ours (lstmprune)": "ours", "PyTorch from our initial weights": "PyTorch, our init",
             "PyTorch from our initial weights on our batches": "PyTorch, our init + batches"}
    print("| seed | " + " | ".join("%s GAP@20 | mAP" % short.get(name, "PyTorch") for name, _ in sides) + " |")
    print("|---:|" + "---:|---:|" * len(sides))
    for sd in sorted(set().union(*(side for _, side in sides))):
        cells = []
        for _, side in sides:
            cells += ["%.4f" % side[sd][k] if sd in side else "" for k in ("gap", "map")]
        print("| %d | %s |" % (sd, " | ".join(cells)))
    print()
    print("| run | seeds | GAP@20 | mAP | Hit@1 | PERR |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, side in sides:
        cells = []
        for k in METRICS:
            mean, sdev, _ = stats([side[sd][k] for sd in side])
            cells.append("**%.4f** ± %.4f" % (mean, sdev))
        print("| %s, mean ± sd | %d | %s |" % (name, len(side), " | ".join(cells)))
    ours = sides[0][1]
    for name, other in sides[1:]:
        seeds = sorted(set(ours) & set(other))  # the difference over the seeds both sides ran
        cells = []
        for k in METRICS:
            mo, _, so = stats([ours[sd][k] for sd in seeds])
            mt, _, st = stats([other[sd][k] for sd in seeds])
            cells.append("%+.4f ± %.4f" % (mo - mt, math.sqrt(so * so + st * st)))
        print("| ours − %s (± s.e.) | %s | %s |" % (name, ",".join(map(str, seeds)), " | ".join(cells)))
    # ours against PyTorch as it comes: every run of both sides, unpaired
    other = sides[1][1]
    if len(ours) > 1 and len(other) > 1:
        extra = " ours >= PyTorch − %g? |" % margin if margin is not None else ""
        print("\n| ours (%d runs) − %s (%d runs), Welch | difference ± s.e. | df | one-sided %g%% lower bound |%s"
              % (len(ours), sides[1][0], len(other), 100 * level, extra))
        print("|---|---:|---:|---:|" + ("---|" if extra else ""))
        for k, label in zip(METRICS, ("GAP@20", "mAP", "Hit@1", "PERR")):
            diff, se, df = welch([r[k] for r in ours.values()], [r[k] for r in other.values()])
            bound = diff - t_quantile(level, df) * se
            verdict = (" %s |" % ("yes" if bound > -margin else "not shown")) if extra else ""
            print("| %s | %+.4f ± %.4f | %.1f | %+.4f |%s" % (label, diff, se, df, bound, verdict))
        print("\n| the same runs, rank-based (robust to a few outlying runs; descriptive) | median, ours | median, "
              "PyTorch | P(ours > PyTorch) | z (Mann-Whitney) | shift (Hodges-Lehmann) |")
        print("|---|---:|---:|---:|---:|---:|")
        for k, label in zip(METRICS, ("GAP@20", "mAP", "Hit@1", "PERR")):
            a, b = [r[k] for r in ours.values()], [r[k] for r in other.values()]
            p_win, z, shift = rank_compare(a, b)
            print("| %s | %.4f | %.4f | %.3f | %+.2f | %+.4f |" % (label, statistics.median(a), statistics.median(b),
                                                                  p_win, z, shift))
    print("\nPyTorch model: %s parameters (two bias vectors per LSTM layer); from our initial weights: one "
          "bias per layer (the second fixed at 0), 923,919 parameters as ours." % params)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
