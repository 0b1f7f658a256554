#!/usr/bin/env python3
"""Our unpruned model against the PyTorch counterpart, seed by seed (scripts/audioset_vs_torch.sh).

    experiments/compare_torch.py DIR

DIR holds ours_seedS/eval.txt (`lstmprune eval --out`) and torch_seedS.json (experiments/audioset_torch.py)
for the same seeds S. Prints a markdown table: every seed's GAP@20, mAP, Hit@1 and PERR on the test
data for both, then the mean, the sample standard deviation and the standard error of each mean, and the
difference of the means (ours - PyTorch) with its standard error. Only seeds present on both sides are
used. Standard library only.
"""
import glob
import json
import math
import os
import re
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


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d = argv[1]
    ours, torch = {}, {}
    for p in glob.glob(os.path.join(d, "ours_seed*", "eval.txt")):
        ours[int(re.search(r"ours_seed(\d+)", p).group(1))] = read_eval(p)
    version, params = "?", "?"
    for p in glob.glob(os.path.join(d, "torch_seed*.json")):
        j = json.load(open(p))
        torch[int(re.search(r"torch_seed(\d+)\.json$", p).group(1))] = {k: float(j["test"][k]) for k in METRICS}
        version, params = j.get("torch", "?"), j.get("parameters", "?")
    seeds = sorted(set(ours) & set(torch))
    if not seeds:
        print("compare_torch: no seed with both ours_seedS/eval.txt and torch_seedS.json in %s" % d, file=sys.stderr)
        return 1
    print("| run | seed | GAP@20 | mAP | Hit@1 | PERR |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, side in (("ours (lstmprune)", ours), ("PyTorch %s" % version, torch)):
        for s in seeds:
            print("| %s | %d | %s |" % (name, s, " | ".join("%.4f" % side[s][k] for k in METRICS)))
    for name, side in (("ours (lstmprune)", ours), ("PyTorch %s" % version, torch)):
        cells = []
        for k in METRICS:
            mean, sd, se = stats([side[s][k] for s in seeds])
            cells.append("**%.4f** ± %.4f" % (mean, sd))
        print("| %s, mean ± sd | %d seeds | %s |" % (name, len(seeds), " | ".join(cells)))
    cells = []
    for k in METRICS:
        mo, _, so = stats([ours[s][k] for s in seeds])
        mt, _, st = stats([torch[s][k] for s in seeds])
        cells.append("%+.4f ± %.4f" % (mo - mt, math.sqrt(so * so + st * st)))
    print("| ours − PyTorch (± s.e.) | | %s |" % " | ".join(cells))
    print("\nPyTorch model: %s parameters (two bias vectors per LSTM layer)." % params)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
