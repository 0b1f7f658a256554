#!/usr/bin/env python3
"""Two training runs step by step (scripts/audioset_steps_vs_torch.sh).

    experiments/compare_steps.py A_TSV B_TSV [NAME_A NAME_B]

Each TSV is `lstmprune train`'s train.tsv (log every step) or the --steps-out file of
experiments/audioset_torch.py: both have the columns step, loss and grad_norm. NAME_A and NAME_B label
the columns (default: ours, PyTorch). Prints a markdown table of both losses and gradient norms at steps
1, 2, 5, 10, 20, 50, ... (counted from the first step both have), at the largest gradient norm of each
side while the two still agree to 1e-3, and the first step at which the
relative loss difference exceeds 1e-6, 1e-5, ..., 1e-1 (where the two trajectories part). Exits with
status 1 if any of the first 10 steps differs by more than 1e-4: from the same weights on the same
batches two correct fp32 implementations agree to a few float roundings there.
Standard library only.
"""
import csv
import sys


def read(path):
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return {int(r["step"]): (float(r["loss"]), float(r["grad_norm"])) for r in rows}


def main(argv):
    if len(argv) not in (3, 5):
        sys.exit(__doc__)
    ours, torch = read(argv[1]), read(argv[2])
    na, nb = argv[3:5] if len(argv) == 5 else ("ours", "PyTorch")
    steps = sorted(set(ours) & set(torch))
    if not steps:
        sys.exit("no common steps")
    rel = {s: abs(ours[s][0] - torch[s][0]) / max(abs(torch[s][0]), 1e-30) for s in steps}
    print("| step | loss (%s) | loss (%s) | relative difference | gradient norm (%s) | (%s) |" % (na, nb, na, nb))
    print("|---:|---:|---:|---:|---:|---:|")
    # steps 1, 2, 5, 10, 20, 50, ... counted from the first common step (a replay from a checkpoint starts
    # later), the last step, and the largest gradient norm of each side before the losses part by 1e-3
    n0 = steps[0] - 1
    marks = {s for s in steps if s - n0 in (1, 2) or any(s - n0 == m * 10 ** k for m in (1, 2, 5) for k in range(7))}
    parted = next((i for i, s in enumerate(steps) if rel[s] > 1e-3), len(steps))
    close = steps[:parted]
    for side in (ours, torch):
        if close:
            marks.add(max(close, key=lambda s: side[s][1]))
    marks = sorted(marks | {steps[-1]})
    for s in marks:
        print("| %d | %.6f | %.6f | %.1e | %.6f | %.6f |" % (s, ours[s][0], torch[s][0], rel[s], ours[s][1],
                                                             torch[s][1]))
    print()
    print("%d steps compared. First step whose relative loss difference exceeds:" % len(steps))
    for e in range(6, 0, -1):
        first = next((s for s in steps if rel[s] > 10.0 ** -e), None)
        print("  1e-%d: %s" % (e, "step %d" % first if first else "none"))
    bad = [s for s in steps[:10] if rel[s] > 1e-4]
    if bad:
        print("FAIL: the first 10 steps differ by more than 1e-4 at step(s) %s" % bad)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
