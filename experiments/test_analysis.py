#!/usr/bin/env python3
"""Tests of the statistics that decide the comparisons with PyTorch (compare_torch.py, spikes.py), each
against an independent computation: Student's t quantile by numerical integration of its density, the
Welch standard error from its definition, the rank statistics by brute force and closed forms, the
giant-spike rule by a direct median, and compare_torch.py's whole table on a directory of known scores.
Run by `make test` (standard library only); exits non-zero on any failure.
"""
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_torch import rank_compare, t_quantile, welch  # noqa: E402
from spikes import SPIKE_FACTOR, WATCH_MIN, WATCH_WINDOW, giant_spikes, spearman  # noqa: E402

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL: " + what)


def t_cdf(x, df, n=4000):
    """P(T <= x) for x >= 0: 1/2 plus Simpson's rule over [0, x] of the density."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    f = lambda t: c * (1 + t * t / df) ** (-(df + 1) / 2)  # noqa: E731
    h = x / n
    s = f(0) + f(x) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, n))
    return 0.5 + s * h / 3


def t_quantile_exact(p, df):
    lo, hi = 0.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def test_t_quantile():
    # at the levels the scripts use (95%, 97.5%, and 98.33% = 1 - 0.05/3 of the third look), Welch's df
    # being fractional; the old Cornish-Fisher expansion was 1.7e-4 off at 97.5% and df 10, 3e-4 at 98.33%
    check(abs(t_quantile_exact(0.95, 10) - 1.812461) < 1e-6, "integration: t(0.95, 10) = 1.812461 (tables)")
    check(abs(t_quantile_exact(0.975, 4) - 2.776445) < 1e-6, "integration: t(0.975, 4) = 2.776445 (tables)")
    for p in (0.95, 0.975, 1 - 0.05 / 3):
        for df in (2.5, 4, 10, 12.5, 20, 33.7, 60, 100, 1000):
            got, want = t_quantile(p, df), t_quantile_exact(p, df)
            check(abs(got - want) < 1e-6, "t_quantile(%g, %g) = %.7f, integration %.7f" % (p, df, got, want))


def test_welch():
    rng = random.Random(1)
    for _ in range(20):
        a = [rng.gauss(0.17, 0.005) for _ in range(rng.randint(5, 30))]
        b = [rng.gauss(0.175, 0.003) for _ in range(rng.randint(5, 30))]
        diff, se, df = welch(a, b)
        va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
        check(abs(diff - (statistics.fmean(a) - statistics.fmean(b))) < 1e-12, "welch difference")
        check(abs(se - math.sqrt(va + vb)) < 1e-12, "welch standard error")
        # Satterthwaite: between the smaller sample's n-1 and the pooled n_a + n_b - 2
        check(min(len(a), len(b)) - 1 - 1e-9 <= df <= len(a) + len(b) - 2 + 1e-9, "welch df in its range")
    a = [1.0, 2.0, 3.0, 4.0]
    diff, se, df = welch(a, [x + 0.5 for x in a])  # equal sizes and variances: df = 2n - 2
    check(abs(diff + 0.5) < 1e-12 and abs(df - 6) < 1e-9, "welch with equal variances: df 2n-2")
    diff, se, df = welch([0.3, 0.3, 0.3], [0.2, 0.2])
    check(abs(diff - 0.1) < 1e-12 and se == 0, "welch with both sides constant")


def test_rank_compare():
    rng = random.Random(2)
    for _ in range(20):
        a = [rng.choice((0.1, 0.2, 0.3, rng.random())) for _ in range(rng.randint(3, 15))]
        b = [rng.choice((0.1, 0.2, 0.3, rng.random())) for _ in range(rng.randint(3, 15))]
        p, z, shift = rank_compare(a, b)
        wins = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b)
        check(abs(p - wins / (len(a) * len(b))) < 1e-12, "P(ours > PyTorch), ties counting half")
        diffs = sorted(x - y for x in a for y in b)
        m = len(diffs)
        hl = diffs[m // 2] if m % 2 else (diffs[m // 2 - 1] + diffs[m // 2]) / 2
        check(abs(shift - hl) < 1e-12, "Hodges-Lehmann shift")
    p, z, _ = rank_compare([5, 6, 7], [1, 2])  # every pair won: U = 6, z = (6 - 3) / sqrt(6 * 6 / 12)
    check(p == 1 and abs(z - 3 / math.sqrt(3)) < 1e-12, "Mann-Whitney z of a complete win")


def test_spearman():
    rng = random.Random(3)
    for _ in range(20):
        n = rng.randint(4, 30)
        a = rng.sample(range(1000), n)
        b = rng.sample(range(1000), n)
        ra = {v: i for i, v in enumerate(sorted(a))}
        rb = {v: i for i, v in enumerate(sorted(b))}
        d2 = sum((ra[x] - rb[y]) ** 2 for x, y in zip(a, b))
        check(abs(spearman(a, b) - (1 - 6 * d2 / (n * (n * n - 1)))) < 1e-12, "Spearman without ties")
    check(abs(spearman([1, 2, 2, 3], [4, 3, 3, 1]) + 1) < 1e-12, "Spearman with ties, reversed order")


def test_giant_spikes():
    # the rule of lstmprune train's watch (optim.h lp_grad_watch), by a direct median of the window
    def direct(gs):
        out = []
        for i, g in enumerate(gs):
            prev = gs[max(0, i - WATCH_WINDOW):i]
            if len(prev) >= WATCH_MIN and statistics.median(prev) > 0 and g > SPIKE_FACTOR * statistics.median(prev):
                out.append(i + 1)
        return out
    rng = random.Random(4)
    for _ in range(30):
        gs = [rng.lognormvariate(1, 1) for _ in range(rng.randint(10, 700))]
        for _ in range(rng.randint(0, 5)):
            gs[rng.randrange(len(gs))] *= 10 ** rng.uniform(3, 6)
        check(giant_spikes(gs) == direct(gs), "giant spikes = direct median rule")
    gs = [3.0] * WATCH_MIN + [3.0e4 + 1]
    check(giant_spikes(gs) == [WATCH_MIN + 1], "a spike just over the factor, right after WATCH_MIN steps")
    check(giant_spikes([3.0] * (WATCH_MIN - 1) + [1e9]) == [], "no verdict before WATCH_MIN steps")


def test_compare_table():
    """compare_torch.py on a directory of known scores: the Welch row's numbers and the verdict."""
    rng = random.Random(5)
    ours = {s: rng.gauss(0.174, 0.004) for s in range(1, 13)}
    torch = {s: rng.gauss(0.175, 0.003) for s in range(1, 11)}
    with tempfile.TemporaryDirectory() as d:
        for s, v in ours.items():
            os.makedirs(os.path.join(d, "ours_seed%d" % s))
            with open(os.path.join(d, "ours_seed%d" % s, "eval.txt"), "w") as f:
                f.write("gap = %.6f\nmap = %.6f\nhit1 = %.6f\nperr = %.6f\n" % (v + 0.1, v, v + 0.3, v + 0.2))
        for s, v in torch.items():
            with open(os.path.join(d, "torch_seed%d.json" % s), "w") as f:
                json.dump({"test": {"gap": v + 0.1, "map": v, "hit1": v + 0.3, "perr": v + 0.2}}, f)
        a = [round(ours[s], 6) for s in ours]
        b = [round(torch[s], 6) for s in torch]
        va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
        diff, se = statistics.fmean(a) - statistics.fmean(b), math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
        bound = diff - t_quantile_exact(0.95, df) * se
        for margin in (-bound + 0.0005, -bound - 0.0005):  # just shown, just not shown
            out = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "compare_torch.py"), d,
                                  "--margin", "%.6f" % margin], capture_output=True, text=True)
            check(out.returncode == 0, "compare_torch.py exit status (%s)" % out.stderr.strip())
            row = re.search(r"^\| mAP \| ([+-][\d.]+) ± ([\d.]+) \| ([\d.]+) \| ([+-][\d.]+) \| (yes|not shown) \|$",
                            out.stdout, re.M)
            check(row is not None, "compare_torch.py prints the mAP Welch row")
            if row:
                check(abs(float(row.group(1)) - diff) < 6e-5 and abs(float(row.group(2)) - se) < 6e-5,
                      "mAP difference and standard error")
                check(abs(float(row.group(3)) - df) < 0.06, "Welch df")
                check(abs(float(row.group(4)) - bound) < 6e-5, "one-sided 95% lower bound")
                check(row.group(5) == ("yes" if bound > -margin else "not shown"), "verdict at margin %g" % margin)


if __name__ == "__main__":
    for test in (test_t_quantile, test_welch, test_rank_compare, test_spearman, test_giant_spikes,
                 test_compare_table):
        n = len(FAILS)
        test()
        print("%s %s" % ("ok  " if len(FAILS) == n else "FAIL", test.__name__))
    print("analysis tests: %d failure(s)" % len(FAILS))
    sys.exit(1 if FAILS else 0)
