#!/usr/bin/python3
"""Summarise a sweep directory (results.csv, and torch.json from experiments/audioset_torch.py if present)
as one markdown table: scripts/audioset.sh writes it to OUT/summary.md. Standard library only.

    python3 experiments/summarize.py runs/audioset > runs/audioset/summary.md
"""
import csv
import json
import os
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    rows = list(csv.DictReader(open(os.path.join(d, "results.csv"))))
    base = next(r for r in rows if r["cell"] == "baseline")
    bp = float(base["parameters"])
    print("| model | target rate | mean rate | units (fw/bw/lstm2) | parameters | GAP@20 pruned | GAP@20 | mAP | Hit@1 "
          "| PERR | latency B=1 ms | latency B=N ms |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["cell"] == "prior":
            print(f"| prior (ignores the input) | | | | | | {float(r['gap_finetuned']):.4f} | {float(r['map_finetuned']):.4f} "
                  f"| {float(r['hit1_finetuned']):.4f} | {float(r['perr_finetuned']):.4f} | | |")
            continue
        name = "ours, unpruned" if r["cell"] == "baseline" else (
            f"{r['schedule']} {r['rule']}+{r['criterion']}" if r["schedule"] != "iss" else f"ISS ({r['rule']})")
        params = f"{int(r['parameters']):,} ({100 * float(r['parameters']) / bp:.0f}%)"
        gp = "" if r["cell"] == "baseline" else f"{float(r['gap_pruned']):.4f}"
        print(f"| {name} | {r['target_rate']} | {r['mean_rate']} | {r['units']} | {params} | {gp} | "
              f"{float(r['gap_finetuned']):.4f} | {float(r['map_finetuned']):.4f} | {float(r['hit1_finetuned']):.4f} | "
              f"{float(r['perr_finetuned']):.4f} | {float(r['latency_ms_b1']):.3f} | {float(r['latency_ms_bn']):.2f} |")
    tj = os.path.join(d, "torch.json")
    if os.path.exists(tj):
        t = json.load(open(tj))
        m = t["test"]
        print(f"| PyTorch {t['torch']}, unpruned | | | | {t['parameters']:,} | | {m['gap']:.4f} | {m['map']:.4f} | "
              f"{m['hit1']:.4f} | {m['perr']:.4f} | | |")
    print()
    print("GAP@20 pruned: right after removing the units; the other metrics after fine-tuning. "
          "Latency: median no-gradient forward pass on this machine (timing columns vary between runs).")


if __name__ == "__main__":
    main()
