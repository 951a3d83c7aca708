#!/usr/bin/env python3
"""Writes docs/RESULTS.md from the results grid's run folders (scripts/results.sh).

  python3 scripts/results_report.py                     rewrite docs/RESULTS.md
  python3 scripts/results_report.py --best-lr M R1 R2   print method M's best searched rate
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RES = os.path.join(ROOT, "results")


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_metrics(path):
    steps, evals = [], []
    try:
        with open(path) as f:
            for line in f:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                (evals if "split" in d else steps).append(d)
    except OSError:
        pass
    return steps, evals


def cell_done(d, result="summary.json"):
    c = load_json(os.path.join(d, "cell.json"))
    return c is not None and c.get("status") == "done" and load_json(os.path.join(d, result)) is not None


def lr_cell_dir(method, lr):
    return os.path.join(RES, "lr-search", "sst2-%s-lr%s-s0" % (method, lr))


def lr_result(method, lr):
    d = lr_cell_dir(method, lr)
    if not cell_done(d):
        return None
    s = load_json(os.path.join(d, "summary.json"))
    _, evals = load_metrics(os.path.join(d, "metrics.jsonl"))
    loss = evals[-1]["loss"] if evals else float("inf")
    return {"lr": lr, "accuracy": s["final_dev_accuracy"], "loss": loss,
            "examples": s["final_dev_examples"], "summary": s, "cell": load_json(os.path.join(d, "cell.json"))}


def best_lr(method, rates):
    res = [lr_result(method, r) for r in rates]
    if any(r is None for r in res):
        return None
    # highest accuracy; then the lower dev loss; then the smaller rate
    res.sort(key=lambda r: (-r["accuracy"], r["loss"], float(r["lr"])))
    return res[0]["lr"]


def main(argv):
    if len(argv) >= 2 and argv[1] == "--best-lr":
        b = best_lr(argv[2], argv[3:])
        if b is None:
            print("results_report.py: the search for %s is not finished" % argv[2], file=sys.stderr)
            return 1
        print(b)
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
