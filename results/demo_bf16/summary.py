#!/usr/bin/python3
"""summary: the demo runs of results/demo_bf16/run.sh in both precisions, paired by seed — the test GAP@20
and mAP of the baseline and of the fine-tuned pruned model, the units kept per group, means, sd and the
95% interval of the paired difference (t distribution). Standard library only.

    python3 results/demo_bf16/summary.py [DIR]   (default runs/demo_bf16; results/demo_bf16 holds the reports)
"""
import json
import math
import os
import statistics
import sys

T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 19: 2.093, 29: 2.045}


def load(path):
    with open(path) as f:
        r = json.load(f)
    m = {x["label"]: x for x in r["models"]}
    return {"base_gap": m["baseline"]["gap"], "base_map": m["baseline"]["map"],
            "ft_gap": m["fine-tuned"]["gap"], "ft_map": m["fine-tuned"]["map"],
            "kept": "/".join(str(g["units_after"]) for g in r["groups"])}


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "runs/demo_bf16"
    runs = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name, "report.json")
        if "_seed" in name and os.path.exists(p):
            prec, seed = name.split("_seed")
            runs.setdefault(int(seed), {})[prec] = load(p)
    seeds = sorted(s for s in runs if len(runs[s]) == 2)
    print("| seed | fp32 baseline GAP | bf16 baseline GAP | fp32 fine-tuned GAP | bf16 fine-tuned GAP | kept fp32 | kept bf16 |")
    print("|---:|---:|---:|---:|---:|---|---|")
    for s in seeds:
        f, h = runs[s]["fp32"], runs[s]["bf16"]
        print(f"| {s} | {f['base_gap']:.4f} | {h['base_gap']:.4f} | {f['ft_gap']:.4f} | {h['ft_gap']:.4f} | {f['kept']} | {h['kept']} |")
    print()
    print(f"| {len(seeds)} seeds, test split | fp32 mean ± sd | bf16 mean ± sd | bf16 − fp32, paired, 95% interval |")
    print("|---|---:|---:|---:|")
    for key, label in [("base_gap", "baseline GAP@20"), ("base_map", "baseline mAP"),
                       ("ft_gap", "fine-tuned GAP@20"), ("ft_map", "fine-tuned mAP")]:
        f = [runs[s]["fp32"][key] for s in seeds]
        h = [runs[s]["bf16"][key] for s in seeds]
        diff = [b - a for a, b in zip(f, h)]
        n = len(diff)
        md = statistics.mean(diff)
        half = T95.get(n - 1, 1.96) * statistics.stdev(diff) / math.sqrt(n) if n > 1 else float("nan")
        print(f"| {label} | {statistics.mean(f):.4f} ± {statistics.stdev(f):.4f} | "
              f"{statistics.mean(h):.4f} ± {statistics.stdev(h):.4f} | {md:+.4f} [{md - half:+.4f}, {md + half:+.4f}] |")


if __name__ == "__main__":
    main()
