#!/usr/bin/env python3
"""The PTB pruning table of docs/RESULTS.md, from the report.json files that `lstmprune lm-prune` writes.

    experiments/ptb_summarize.py RUN_DIR... [--bin build/lstmprune --rounds 3] [--markdown]

Each RUN_DIR is an lm-prune output directory (report.json inside). One row for the baseline (taken from
the first report), then one per run: method, rate, hidden sizes, parameters (all / LSTM), test and valid
perplexity right after pruning and after fine-tuning, and words/s.

words/s: every report measured its own models while whatever else ran on the machine, so its figures
are not comparable across runs. With --bin, every model (the baseline and each fine-tuned model) is
re-measured here with `lstmprune lm-eval --split test`, in ROUNDS interleaved rounds (model order
rotated), keeping each model's fastest round: the models then share the machine's conditions.
Standard library only.
"""
import argparse
import json
import os
import re
import subprocess
import sys


def method_of(report):
    plan, info = report["plan"], report.get("info", {})
    m = plan.get("method", "?")
    tgt = plan.get("target_rate")
    if m.startswith("eigen") and (tgt is None or tgt <= 0):
        return "%s, tau %.2f" % (m, plan.get("tau", 0.0))
    if m == "iss":
        return "ISS, lambda %g" % float(info.get("iss.lambda", "nan"))
    return "%s, rate %.4g" % (m, tgt)


def words_per_s(binary, ckpt, threads):
    out = subprocess.run([binary, "lm-eval", "--checkpoint", ckpt, "--split", "test", "--threads", str(threads)],
                         check=True, capture_output=True, text=True).stdout
    m = re.search(r"([0-9.]+) words/s", out)
    if not m:
        raise SystemExit("no words/s in lm-eval output for %s:\n%s" % (ckpt, out))
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--bin", help="lstmprune binary: re-measure words/s of every model here")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    reports = []
    for d in a.runs:
        p = os.path.join(d, "report.json")
        if not os.path.exists(p):
            print("(skipped %s: no report.json)" % d, file=sys.stderr)
            continue
        reports.append((d, json.load(open(p))))
    if not reports:
        raise SystemExit("no report.json in the given directories")

    base = reports[0][1]["models"][0]
    models = {"baseline": base["checkpoint"]}
    for d, r in reports:
        models[d] = [m for m in r["models"] if m["label"] == "fine-tuned"][0]["checkpoint"]
    speed = {}
    if a.bin:
        keys = list(models)
        for rnd in range(a.rounds):
            order = keys[rnd % len(keys):] + keys[:rnd % len(keys)]
            for k in order:
                s = words_per_s(a.bin, models[k], a.threads)
                speed[k] = max(speed.get(k, 0.0), s)
            print("round %d of %d measured" % (rnd + 1, a.rounds), file=sys.stderr)

    def wps(key, model):
        return speed[key] if key in speed else model["words_per_sec"]

    print("| model | mean rate | hidden sizes | parameters | LSTM parameters | test ppl pruned | valid ppl | "
          "test ppl | words/s |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    print("| baseline (unpruned) | – | %s | %s | %s | – | %.2f | %.2f | %.0f |" % (
        ", ".join(map(str, base["hidden"])), format(base["params"], ","), format(base["lstm_params"], ","),
        base["valid_ppl"], base["test_ppl"], wps("baseline", base)))
    for d, r in reports:
        pruned = [m for m in r["models"] if m["label"] == "pruned"][0]
        ft = [m for m in r["models"] if m["label"] == "fine-tuned"][0]
        print("| %s (`%s`) | %.3f | %s | %s (%.0f%%) | %s (%.0f%%) | %.2f | %.2f | %.2f | %.0f |" % (
            method_of(r), os.path.basename(os.path.normpath(d)), r["plan"]["mean_rate"],
            ", ".join(map(str, ft["hidden"])), format(ft["params"], ","), 100.0 * ft["params"] / base["params"],
            format(ft["lstm_params"], ","), 100.0 * ft["lstm_params"] / base["lstm_params"], pruned["test_ppl"],
            ft["valid_ppl"], ft["test_ppl"], wps(d, ft)))
    if speed:
        print("\nwords/s: test-set evaluation (batch 20, window 35, %d thread(s)), fastest of %d interleaved "
              "rounds." % (a.threads, a.rounds))
    else:
        print("\nwords/s: as each report measured it (not comparable across runs on a shared machine).")


if __name__ == "__main__":
    main()
