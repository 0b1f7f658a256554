#!/usr/bin/env python3
"""The continuations of a replay side by side (scripts/audioset_replay_vs_torch.sh).

    experiments/replay_table.py OUT [SUFFIX]

OUT holds ours/ (an lstmprune run directory resumed from the replay's checkpoint, with eval.txt) and
torch_fp32.{json,tsv}, torch_fp64.{json,tsv} (experiments/audioset_torch.py --resume-from ... --out ...
--steps-out ...); with SUFFIX (e.g. _clip1000) ours_clip1000/, torch_fp32_clip1000.json and so on.
Prints one markdown table: the validation GAP of each continuation at a few epochs, its best validation
epoch, its gradient spikes after the replay's first step (steps with a global norm
above 1e3, the largest), and the test GAP@20 and mAP of its best validation epoch.
Standard library only.
"""
import csv
import json
import os
import sys

from compare_torch import read_eval  # eval.txt of `lstmprune eval --out`

def tsv(path):
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def ours(out, sfx):
    d = os.path.join(out, "ours" + sfx)
    gap = {int(r["epoch"]): float(r["gap"]) for r in tsv(os.path.join(d, "valid.tsv"))}
    norms = {int(r["step"]): float(r["grad_norm"]) for r in tsv(os.path.join(d, "train.tsv"))}
    ev = read_eval(os.path.join(d, "eval.txt"))
    return gap, norms, ev["gap"], ev["map"]


def torch(out, prec):
    j = json.load(open(os.path.join(out, "torch_%s.json" % prec)))  # prec carries the suffix
    gap = {c["epoch"]: c["gap"] for c in j["curve"]}
    norms = {int(r["step"]): float(r["grad_norm"]) for r in tsv(os.path.join(out, "torch_%s.tsv" % prec))}
    return gap, norms, j["test"]["gap"], j["test"]["map"]


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    out, sfx = argv[1], argv[2] if len(argv) == 3 else ""
    rows = [("ours", ours(out, sfx))]
    for prec, name in (("fp32", "PyTorch fp32"), ("fp64", "PyTorch float64")):
        if os.path.exists(os.path.join(out, "torch_%s%s.json" % (prec, sfx))):
            rows.append((name, torch(out, prec + sfx)))
    first = min(rows[1][1][1]) if len(rows) > 1 else min(rows[0][1][1])  # the replay's first step
    epochs = sorted(set.intersection(*(set(r[1][0]) for r in rows)))
    show = [e for e in epochs if e == epochs[0] or e == epochs[-1] or (e - epochs[0]) % 6 == 5]
    print("| continuation | " + " | ".join("GAP ep %d" % e for e in show) +
          " | best epoch | steps with norm > 1e3 | largest norm (step) | test GAP@20 | test mAP |")
    print("|---|" + "---:|" * (len(show) + 5))
    for name, (gap, norms, tgap, tmap) in rows:
        after = {s: n for s, n in norms.items() if s >= first}
        best = max(gap, key=lambda e: gap[e])
        big = max(after, key=lambda s: after[s])
        print("| %s | %s | %d | %d | %.3g (%d) | %.4f | %.4f |" % (
            name, " | ".join("%.4f" % gap[e] for e in show), best, sum(n > 1e3 for n in after.values()),
            after[big], big, tgap, tmap))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
