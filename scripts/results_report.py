#!/usr/bin/env python3
"""Writes docs/RESULTS.md (and docs/results_sst2_curve.svg) from the results grid's run folders
(scripts/results.sh). Python 3 standard library only. Cells that have not finished are shown as
pending; nothing is filled in that was not measured.

  python3 scripts/results_report.py                     rewrite docs/RESULTS.md
  python3 scripts/results_report.py --best-lr M R1 R2   print method M's best searched rate
"""
import json
import math
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RES = os.path.join(ROOT, "results")
RUNS = os.path.join(RES, "runs")
DATA = os.environ.get("LAMP_DATA_DIR") or os.path.join(ROOT, "..", "shared", "data")
OUT_MD = os.path.join(ROOT, "docs", "RESULTS.md")
OUT_SVG = os.path.join(ROOT, "docs", "results_sst2_curve.svg")

# The grid of scripts/results.sh (keep the two in step).
TASKS = ["sst2", "mrpc", "cola", "rte", "cb"]
METHODS = ["lamp", "lamp1", "pt", "dpt"]
LAMP1_TASKS = ["sst2", "rte"]
SEEDS = [0, 1, 2]
LR_RATES = {"lamp": ["0.01", "0.03", "0.1"], "pt": ["0.003", "0.01", "0.03", "0.1", "0.3"],
            "dpt": ["0.01", "0.03", "0.1", "0.3"]}
STEPS, EVAL_MAX = 100, 100
VAL_TASKS = ["boolq", "copa", "wic"]
TRANSFER = {"boolq": "rte", "copa": "cb", "wic": "mrpc"}
BOOLQ_LIMIT = 500

METHOD_NAME = {"lamp": "LAMP (s = 2)", "lamp1": "LAMP (s = 1)", "pt": "PT", "dpt": "DPT",
               "bare": "bare model"}
# the task's metric: key in the eval lines, name in the tables
METRIC = {"sst2": ("accuracy", "accuracy"), "rte": ("accuracy", "accuracy"),
          "mrpc": ("f1", "F1"), "cola": ("mcc", "MCC"), "cb": ("macro_f1", "macro-F1"),
          "boolq": ("accuracy", "accuracy"), "copa": ("accuracy", "accuracy"),
          "wic": ("accuracy", "accuracy")}
# dev files: (path, format, label column for TSV, header lines), and the class order
DEV = {"sst2": ("SST-2/dev.tsv", "tsv", -1, 1), "rte": ("RTE/dev.tsv", "tsv", -1, 1),
       "mrpc": ("MRPC/dev.tsv", "tsv", 0, 1), "cola": ("CoLA/dev.tsv", "tsv", 1, 0),
       "cb": ("CB/val.jsonl", "jsonl", None, 0), "boolq": ("BoolQ/val.jsonl", "jsonl", None, 0),
       "copa": ("COPA/val.jsonl", "jsonl", None, 0), "wic": ("WiC/val.jsonl", "jsonl", None, 0)}
CLASSES = {"sst2": ["0", "1"], "rte": ["entailment", "not_entailment"], "mrpc": ["0", "1"],
           "cola": ["0", "1"], "cb": ["entailment", "contradiction", "neutral"],
           "boolq": ["false", "true"], "copa": ["0", "1"], "wic": ["false", "true"]}


# ---- reading the run folders ----------------------------------------------------------------

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


def train_cell(d):
    """A finished training cell's numbers, or None."""
    if not cell_done(d):
        return None
    s = load_json(os.path.join(d, "summary.json"))
    c = load_json(os.path.join(d, "cell.json"))
    steps, evals = load_metrics(os.path.join(d, "metrics.jsonl"))
    final = evals[-1] if evals else {}
    # step times: the first step of the run and of each resumed session compile or wait, so
    # they are left out (as summary.json does for one session)
    first = {1} | {r + 1 for r in c.get("resume_steps", [])}
    by_step = {}
    for x in steps:
        by_step[x["step"]] = x  # a resumed run rewrites its metrics from the checkpoint's step
    timed = [by_step[k] for k in sorted(by_step) if k not in first]
    # medians: the grid shares its machine, and a step that waited (a build beside it, the grid
    # paused for a measurement) would move a mean by minutes
    median_step = (statistics.median(x["step_s"] for x in timed) if timed
                 else s.get("mean_step_s"))
    tps = (statistics.median(x["tokens_per_s"] for x in timed) if timed
           else s.get("tokens_per_s"))
    # the curve: interval evaluations on the first EVAL_MAX dev examples, and the final prompt on
    # the same examples (step100_eval.json)
    curve = [(e["step"], e) for e in evals[:-1] if e.get("examples") == EVAL_MAX]
    last = load_json(os.path.join(d, "step%d_eval.json" % STEPS))
    if last:
        curve.append((STEPS, last))
    curve.sort(key=lambda x: x[0])
    best_step, best_acc = None, -1
    for st, e in curve:
        if e["accuracy"] > best_acc:
            best_step, best_acc = st, e["accuracy"]
    train_to_best = best_step * median_step if best_step is not None else None
    return {"summary": s, "cell": c, "final": final, "curve": curve, "median_step": median_step,
            "tps": tps, "best_step": best_step, "best_acc": best_acc, "to_best_s": train_to_best,
            "train_s": sum(x["step_s"] for x in by_step.values())}


def eval_cell(d):
    if not cell_done(d, "eval.json"):
        return None
    return {"eval": load_json(os.path.join(d, "eval.json")), "cell": load_json(os.path.join(d, "cell.json"))}


def lr_cell_dir(method, lr):
    return os.path.join(RES, "lr-search", "sst2-%s-lr%s-s0" % (method, lr))


def lr_result(method, lr):
    d = lr_cell_dir(method, lr)
    if not cell_done(d):
        return None
    s = load_json(os.path.join(d, "summary.json"))
    _, evals = load_metrics(os.path.join(d, "metrics.jsonl"))
    loss = evals[-1]["loss"] if evals else float("inf")
    tc = train_cell(d)
    return {"lr": lr, "accuracy": s["final_dev_accuracy"], "loss": loss,
            "examples": s["final_dev_examples"], "summary": s, "median_step": tc["median_step"],
            "cell": load_json(os.path.join(d, "cell.json"))}


def best_lr(method, rates):
    res = [lr_result(method, r) for r in rates]
    if any(r is None for r in res):
        return None
    # the highest dev accuracy; then the lower dev loss; then the smaller rate
    res.sort(key=lambda r: (-r["accuracy"], r["loss"], float(r["lr"])))
    return res[0]["lr"]


# ---- the data: majority class ---------------------------------------------------------------

def dev_labels(task, limit=0):
    path, fmt, col, header = DEV[task]
    labels = []
    with open(os.path.join(DATA, path), encoding="utf-8-sig") as f:
        for i, line in enumerate(f):
            if i < header:
                continue
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if fmt == "tsv":
                labels.append(line.split("\t")[col].strip())
            else:
                v = json.loads(line)["label"]
                labels.append(("true" if v else "false") if isinstance(v, bool) else str(v))
    return labels[:limit] if limit else labels


def scores(task, gold, pred):
    """accuracy and the task's metric for predictions given as class indices"""
    K = len(CLASSES[task])
    n = len(gold)
    acc = sum(g == p for g, p in zip(gold, pred)) / n
    f1s = []
    for k in range(K):
        tp = sum(g == k and p == k for g, p in zip(gold, pred))
        fp = sum(g != k and p == k for g, p in zip(gold, pred))
        fn = sum(g == k and p != k for g, p in zip(gold, pred))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    out = {"accuracy": acc, "f1": f1s[1] if K > 1 else 0.0, "macro_f1": sum(f1s) / K}
    tp = sum(g == 1 and p == 1 for g, p in zip(gold, pred))
    tn = sum(g == 0 and p == 0 for g, p in zip(gold, pred))
    fp = sum(g == 0 and p == 1 for g, p in zip(gold, pred))
    fn = sum(g == 1 and p == 0 for g, p in zip(gold, pred))
    den = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    out["mcc"] = (tp * tn - fp * fn) / den if den else 0.0
    return out


def majority(task, limit=0):
    try:
        labels = dev_labels(task, limit)
    except OSError:
        return None
    cls = CLASSES[task]
    gold = [cls.index(l) for l in labels]
    counts = [gold.count(k) for k in range(len(cls))]
    m = counts.index(max(counts))
    r = scores(task, gold, [m] * len(gold))
    r.update({"class": cls[m], "n": len(gold)})
    return r


# ---- formatting -----------------------------------------------------------------------------

def mean_std(xs):
    n = len(xs)
    if not n:
        return None, None, 0
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else None
    return m, sd, n


def fmt_ms(xs, digits=3, of=None):
    m, sd, n = mean_std(xs)
    if not n:
        return "pending" + (" (0/%d)" % of if of else "")
    s = "%.*f" % (digits, m)
    s += " ± %.*f" % (digits, sd) if sd is not None else " ± –"
    return s + " (n = %d)" % n


def f3(x):
    return "–" if x is None else "%.3f" % x


def git(*args):
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


# ---- the plot -------------------------------------------------------------------------------

COLORS = {"lamp": "#1f77b4", "lamp1": "#17becf", "pt": "#d62728", "dpt": "#2ca02c"}


def svg_curve(path, task, cells, bare_acc):
    W, H, L, R, T, B = 640, 400, 60, 170, 40, 50
    pts = [e["accuracy"] for m in cells for c in cells[m] for _, e in c["curve"]]
    if bare_acc is not None:
        pts.append(bare_acc)
    lo = math.floor(min(pts + [0.5]) * 20) / 20
    hi = min(1.0, math.ceil(max(pts + [0.6]) * 20) / 20)
    x = lambda s: L + (W - L - R) * s / STEPS
    y = lambda a: T + (H - T - B) * (hi - a) / (hi - lo)
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
         'font-size="12">' % (W, H), '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="22" font-size="14">%s: dev accuracy (first %d examples) against steps'
         '</text>' % (L, task.upper() if task != "sst2" else "SST-2", EVAL_MAX)]
    ticks = [lo + k * 0.05 for k in range(int(round((hi - lo) / 0.05)) + 1)]
    for a in ticks:
        o.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (L, y(a), W - R, y(a)))
        o.append('<text x="%d" y="%.1f" text-anchor="end">%.2f</text>' % (L - 6, y(a) + 4, a))
    for s in range(0, STEPS + 1, 25):
        o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (x(s), T, x(s), H - B))
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (x(s), H - B + 16, s))
    o.append('<text x="%d" y="%d" text-anchor="middle">step</text>' % ((L + W - R) // 2, H - 12))
    o.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>'
             % (L, T, W - L - R, H - T - B))
    ly = T + 10
    if bare_acc is not None:
        o.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#888" stroke-dasharray="6 4"/>'
                 % (L, y(bare_acc), W - R, y(bare_acc)))
    for m in METHODS:
        runs = cells.get(m) or []
        if not runs:
            continue
        col = COLORS[m]
        for c in runs:  # each seed, thin
            p = " ".join("%.1f,%.1f" % (x(s), y(e["accuracy"])) for s, e in c["curve"])
            o.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="1" '
                     'stroke-opacity="0.35"/>' % (p, col))
        steps = sorted({s for c in runs for s, _ in c["curve"]})
        mean = []
        for s in steps:
            v = [e["accuracy"] for c in runs for t, e in c["curve"] if t == s]
            mean.append((s, sum(v) / len(v)))
        p = " ".join("%.1f,%.1f" % (x(s), y(a)) for s, a in mean)
        o.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5"/>' % (p, col))
        for s, a in mean:
            o.append('<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>' % (x(s), y(a), col))
        o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.5"/>'
                 % (W - R + 12, ly, W - R + 32, ly, col))
        o.append('<text x="%d" y="%d">%s, n = %d</text>' % (W - R + 38, ly + 4, METHOD_NAME[m], len(runs)))
        ly += 20
    if bare_acc is not None:
        o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888" stroke-dasharray="6 4"/>'
                 % (W - R + 12, ly, W - R + 32, ly))
        o.append('<text x="%d" y="%d">bare model</text>' % (W - R + 38, ly + 4))
        o.append('<text x="%d" y="%d" font-size="10">(all dev examples)</text>' % (W - R + 38, ly + 17))
        ly += 30
    o.append('<text x="%d" y="%d" font-size="10">thick: mean over seeds;</text>' % (W - R + 12, ly + 10))
    o.append('<text x="%d" y="%d" font-size="10">thin: each seed</text>' % (W - R + 12, ly + 23))
    o.append("</svg>")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(o) + "\n")
    os.replace(path + ".tmp", path)


HUMAN_BEGIN = "<!-- reading: human-written, kept when the report is rewritten; edit between these markers -->"
HUMAN_END = "<!-- /reading -->"


def human_reading():
    """the human-written part of Reading from the current docs/RESULTS.md, if any"""
    try:
        with open(OUT_MD) as f:
            text = f.read()
        a = text.index(HUMAN_BEGIN) + len(HUMAN_BEGIN)
        b = text.index(HUMAN_END, a)
        return text[a:b].strip("\n")
    except (OSError, ValueError):
        return ("**Placeholder: the interpretation is to be written by a person once the grid is "
                "complete.** Until then, the generated lines below say only what the finished "
                "cells show.")


# ---- the document ---------------------------------------------------------------------------

def main(argv):
    if len(argv) >= 2 and argv[1] == "--best-lr":
        b = best_lr(argv[2], argv[3:])
        if b is None:
            print("results_report.py: the search for %s is not finished" % argv[2], file=sys.stderr)
            return 1
        print(b)
        return 0

    grid = {}  # (task, method) -> list of finished cells over seeds
    for t in TASKS:
        for m in METHODS:
            if m == "lamp1" and t not in LAMP1_TASKS:
                continue
            grid[(t, m)] = [c for c in (train_cell(os.path.join(RUNS, "%s-%s-s%d" % (t, m, s)))
                                        for s in SEEDS) if c]
    bare = {t: eval_cell(os.path.join(RUNS, "%s-bare" % t)) for t in TASKS + VAL_TASKS}
    transfer = {t: eval_cell(os.path.join(RUNS, "%s-from-%s-lamp-s0" % (t, TRANSFER[t])))
                for t in VAL_TASKS}
    lrs = {m: [lr_result(m, r) for r in LR_RATES[m]] for m in LR_RATES}
    chosen = {m: best_lr(m, LR_RATES[m]) for m in LR_RATES}

    cells_all = [c for v in grid.values() for c in v] + [c for c in bare.values() if c] + \
        [c for c in transfer.values() if c] + [r for v in lrs.values() for r in v if r]
    commits = sorted({c["cell"]["commit"] for c in cells_all})
    devices = sorted({c["cell"].get("device", "") for c in cells_all} - {""})
    fps = sorted({c["cell"]["fingerprint"] for c in cells_all})
    n_train = sum(1 for k in grid for _ in SEEDS)
    n_done = sum(len(v) for v in grid.values())
    walls = [c["cell"]["wall_s"] for c in cells_all]

    L = []
    w = L.append
    w("# Results: LAMP, PT and DPT on SmolLM2-135M-Instruct")
    w("")
    w("Written by `scripts/results_report.py` from the run folders of `scripts/results.sh` "
      "(under `results/`); do not edit by hand, except between the markers of the section **Reading** (that part is kept). Cells that have "
      "not finished are shown as *pending*: nothing here is filled in that was not measured.")
    w("")
    w("Progress: %d of %d training cells finished (%d (task, method) pairs × %d seeds), "
      "%d of %d bare-model cells, %d of %d transfer cells, %d of %d learning-rate-search runs; "
      "%.1f h of cell wall time so far."
      % (n_done, n_train, len(grid), len(SEEDS), sum(1 for c in bare.values() if c), len(bare),
         sum(1 for c in transfer.values() if c), len(transfer),
         sum(1 for v in lrs.values() for r in v if r), sum(len(v) for v in LR_RATES.values()),
         sum(walls) / 3600))
    w("")
    w("- lamp commit(s): %s" % (", ".join("`%s`" % c[:10] for c in commits) or "none yet"))
    w("- device(s): %s" % (", ".join("`%s`" % d for d in devices) or "none yet"))
    w("- fingerprint(s) (see *How the grid runs*): %s" % (", ".join("`%s`" % f for f in fps) or "none yet"))
    w("- the machine: 2 CPU cores (PoCL's pthread device), shared with builds and tests while "
      "the grid ran, every lamp process under `nice -n 19`; times are therefore upper bounds of "
      "what an idle machine gives.")
    w("")

    # ---- the budget
    w("## The budget")
    w("")
    w("Every trained cell: `--steps %d --batch 8 --max-tokens 128`, interval evaluations every 25 "
      "steps on the first %d dev examples (`--eval-every 25 --eval-max %d`), the final evaluation "
      "on the whole dev set (`--final-eval-max 0`), a checkpoint every 25 steps, AdamW with linear "
      "decay, clipping 1.0, the prompt shape of the defaults (l = 100, r = 8; s = 2 for LAMP and "
      "1 for PT and DPT; DPT's bottleneck 10), each method at its best searched rate. The same "
      "steps, batch and tokens for every method." % (STEPS, EVAL_MAX, EVAL_MAX))
    w("")
    w("Why this budget: the machine is a shared 2-core CPU. A step of batch 8 × 128 tokens takes "
      "about 2 s on SST-2 and 5-7 s on RTE, MRPC and CB (long texts), an RTE dev evaluation of 100 "
      "pairs about 35 s. 100 steps × 3 seeds × 17 (task, method) pairs, plus the full-dev final "
      "evaluations, the bare-model rows and the learning-rate search, is an estimated 9 hours of "
      "background work on an idle machine (from the step and evaluation times above; longer while "
      "the machine is shared: the first search cells ran 1.1-2.8 times slower than idle), which "
      "it can finish overnight; 300 steps (the README's default) would be more than a day. 100 steps "
      "of batch 8 are 800 examples: one tenth of an SST-2 epoch, one third of RTE, but 3 epochs "
      "of CB's 250. `--max-tokens 128` keeps the end of longer texts (the question and answer "
      "cue); it cuts some RTE, CB and most BoolQ passages, the same for every method and the bare "
      "model (whose rows below also use `--max-tokens 128`).")
    w("")

    # ---- main table
    w("## Scores per task and method")
    w("")
    w("The task's metric on the whole dev set (SST-2, RTE: accuracy; MRPC: F1 of class 1; CoLA: "
      "Matthews correlation; CB: macro-F1), mean ± standard deviation (sample, n − 1) over the "
      "finished seeds, n shown. *Majority* predicts the dev set's most frequent class for every "
      "example. The bare model is deterministic (one cell per task).")
    w("")
    cols = ["majority", "bare model"] + [METHOD_NAME[m] for m in METHODS]
    w("| task (metric, dev examples) | " + " | ".join(cols) + " |")
    w("|---|" + "---:|" * len(cols))
    maj = {t: majority(t, BOOLQ_LIMIT if t == "boolq" else 0) for t in TASKS + VAL_TASKS}
    for t in TASKS:
        key, name = METRIC[t]
        mj = maj[t]
        row = ["%s (%s, %s)" % (t, name, mj["n"] if mj else "?"), f3(mj[key]) if mj else "?"]
        b = bare[t]
        row.append(f3(b["eval"].get(key)) if b else "pending")
        for m in METHODS:
            if (t, m) not in grid:
                row.append("")
                continue
            row.append(fmt_ms([c["final"].get(key) for c in grid[(t, m)]], of=len(SEEDS)))
        w("| " + " | ".join(row) + " |")
    w("")
    w("Accuracy for the tasks whose metric is another one:")
    w("")
    w("| task | " + " | ".join(cols) + " |")
    w("|---|" + "---:|" * len(cols))
    for t in TASKS:
        if METRIC[t][0] == "accuracy":
            continue
        mj = maj[t]
        row = [t, f3(mj["accuracy"]) if mj else "?"]
        b = bare[t]
        row.append(f3(b["eval"]["accuracy"]) if b else "pending")
        for m in METHODS:
            if (t, m) not in grid:
                row.append("")
                continue
            row.append(fmt_ms([c["final"].get("accuracy") for c in grid[(t, m)]], of=len(SEEDS)))
        w("| " + " | ".join(row) + " |")
    w("")
    w("LAMP (s = 1) runs on SST-2 and RTE only. Per seed (final metric; seeds 0, 1, 2):")
    w("")
    w("| task | " + " | ".join(METHOD_NAME[m] for m in METHODS) + " |")
    w("|---|" + "---|" * len(METHODS))
    for t in TASKS:
        row = [t]
        for m in METHODS:
            if (t, m) not in grid:
                row.append("")
                continue
            vals = []
            for s in SEEDS:
                c = train_cell(os.path.join(RUNS, "%s-%s-s%d" % (t, m, s)))
                vals.append(f3(c["final"].get(METRIC[t][0])) if c else "pending")
            row.append(", ".join(vals))
        w("| " + " | ".join(row) + " |")
    w("")
    w("Paired by seed: a seed gives every method the same batches in the same order (it seeds the "
      "data order as well as the prompt), and every cell is scored on the same dev set, so the "
      "per-seed difference of two methods leaves out what a seed does to both. LAMP (s = 2) "
      "minus PT and minus DPT, in the task's metric, per seed (0, 1, 2), then the mean ± standard "
      "deviation of the differences. A gap of one sign on every seed and larger than its "
      "deviation is consistent; otherwise the seeds disagree.")
    w("")
    w("| task | LAMP − PT per seed | mean ± sd | LAMP − DPT per seed | mean ± sd |")
    w("|---|---|---:|---|---:|")
    for t in TASKS:
        row = [t]
        for other in ("pt", "dpt"):
            per, diffs = [], []
            for sd in SEEDS:
                a = train_cell(os.path.join(RUNS, "%s-lamp-s%d" % (t, sd)))
                b = train_cell(os.path.join(RUNS, "%s-%s-s%d" % (t, other, sd)))
                va = a["final"].get(METRIC[t][0]) if a else None
                vb = b["final"].get(METRIC[t][0]) if b else None
                if va is None or vb is None:
                    per.append("pending")
                    continue
                diffs.append(va - vb)
                per.append("%+.3f" % (va - vb))
            m, dev, n = mean_std(diffs)
            row.append(", ".join(per))
            row.append("pending" if not n else "%+.3f ± %s" % (m, "%.3f" % dev if dev is not None
                                                                 else "–"))
        w("| " + " | ".join(row) + " |")
    w("")

    # ---- validation-only tasks
    w("## BoolQ, COPA, WiC (validation split only)")
    w("")
    w("No train split is shipped, so these are zero-shot rows (the bare model) and one transfer "
      "row each: the seed-0 LAMP prompt of a related task with a train split, evaluated with "
      "`lamp eval --checkpoint <that cell>/checkpoint.safetensors --task <task>` (the task's "
      "template and words, the prompt of the other task). Pairs: BoolQ ← RTE (a passage and a "
      "yes/no question), COPA ← CB (premise-based inference), WiC ← MRPC (do two sentences mean "
      "the same). BoolQ uses its first %d of 3,270 passages (`--limit %d`): at 128 tokens a "
      "passage costs about as much as an RTE pair, and the whole set twice would be about 40 "
      "minutes of the grid; the majority score is over the same %d." % (BOOLQ_LIMIT, BOOLQ_LIMIT, BOOLQ_LIMIT))
    w("")
    w("| task (examples) | majority (accuracy) | bare model | transfer: source | transfer accuracy |")
    w("|---|---:|---:|---|---:|")
    for t in VAL_TASKS:
        mj = maj[t]
        b, tr = bare[t], transfer[t]
        w("| %s (%s) | %s | %s | %s-lamp-s0 | %s |" % (
            t, mj["n"] if mj else "?", f3(mj["accuracy"]) if mj else "?",
            f3(b["eval"]["accuracy"]) if b else "pending", TRANSFER[t],
            f3(tr["eval"]["accuracy"]) if tr else "pending"))
    w("")

    # ---- efficiency
    w("## Efficiency")
    w("")
    w("Per task and method, over the finished seeds: the times (step, tokens/s, training s to "
      "best, cell wall) are the median of the seeds' values, so that one seed run beside other "
      "jobs does not move them, the rest are means. Trainable parameters and device memory "
      "(lamp's own allocations: weights, workspace, prompt, gradients, AdamW moments) are from "
      "`summary.json`; the step time and tokens/s (text tokens, prompt rows not counted) are the "
      "medians of `metrics.jsonl` over steps 2-%d (the first step of a run and of each resumed "
      "session left out): the machine was shared, and a step that waited for another job would "
      "move a mean far more than a median. *Best at step* is the interval evaluation (steps 25, "
      "50, 75 and the final prompt, on the first %d dev examples) with the highest accuracy, the "
      "first one on ties; *training s to best* is that step times the median step (evaluations "
      "not counted). *Cell wall* is the whole cell from `cell.json` (setup, training, interval "
      "and final evaluations, waits included)."
      % (STEPS, EVAL_MAX))
    w("")
    w("| task | method | trainable | prompt rows | median step s | tokens/s | device MiB | best interval acc. | best at step | training s to best | cell wall s | n |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for t in TASKS:
        for m in METHODS:
            if (t, m) not in grid:
                continue
            cs = grid[(t, m)]
            if not cs:
                w("| %s | %s | pending | | | | | | | | | 0 |" % (t, METHOD_NAME[m]))
                continue
            avg = lambda f: sum(f(c) for c in cs) / len(cs)
            med = lambda f: statistics.median(f(c) for c in cs)
            w("| %s | %s | {:,} | %d | %.2f | %.1f | %.0f | %.3f | %s | %.0f | %.0f | %d |".format(
                cs[0]["summary"]["trainable_params"]) % (
                t, METHOD_NAME[m], cs[0]["summary"]["prompt_rows"], med(lambda c: c["median_step"]),
                med(lambda c: c["tps"]), avg(lambda c: c["summary"]["device_memory_bytes"]) / 1048576,
                avg(lambda c: c["best_acc"]), ", ".join(str(c["best_step"]) for c in cs),
                med(lambda c: c["to_best_s"]), med(lambda c: c["cell"]["wall_s"]), len(cs)))
    w("")

    # ---- plot
    w("## Dev accuracy against steps (SST-2)")
    w("")
    sst = {m: grid.get(("sst2", m), []) for m in METHODS}
    if any(sst.values()):
        svg_curve(OUT_SVG, "sst2", sst, bare["sst2"]["eval"]["accuracy"] if bare["sst2"] else None)
        w("![SST-2 dev accuracy against steps](results_sst2_curve.svg)")
        w("")
        w("Accuracy on the first %d dev examples at steps 25, 50, 75 (interval evaluations) and 100 "
          "(the final prompt, `lamp eval --checkpoint ... --limit %d`, because lamp replaces the "
          "last interval evaluation by the full one). The dashed line is the bare model on all "
          "872 examples. Mean over seeds:" % (EVAL_MAX, EVAL_MAX))
        w("")
        w("| method | step 25 | step 50 | step 75 | step 100 | n |")
        w("|---|---:|---:|---:|---:|---:|")
        for m in METHODS:
            cs = sst[m]
            if not cs:
                w("| %s | pending | | | | 0 |" % METHOD_NAME[m])
                continue
            vals = []
            for s in (25, 50, 75, 100):
                v = [e["accuracy"] for c in cs for st, e in c["curve"] if st == s]
                vals.append("%.3f" % (sum(v) / len(v)) if v else "–")
            w("| %s | %s | %d |" % (METHOD_NAME[m], " | ".join(vals), len(cs)))
    else:
        w("*pending*: no SST-2 grid cell has finished yet.")
    w("")

    # ---- lr search
    w("## Learning-rate search")
    w("")
    w("SST-2 (the cheapest task), seed 0, the grid's budget (100 steps, batch 8, 128 tokens), no "
      "interval evaluations, the final evaluation on the first 200 dev examples "
      "(`results/lr-search/`). Each method's grid rate is the one with the highest accuracy here "
      "(ties: the lower dev loss). PT and DPT were first searched at 0.03, 0.1 and 0.3; PT's "
      "best was then its lowest rate, so 0.01 was added for both; PT's 0.01 led again, so PT "
      "also got 0.003. One seed and 200 examples: a difference of one or two points "
      "between rates is within noise (one example is 0.5 points), so this picks a reasonable "
      "rate, not the best one.")
    w("")
    w("| method | lr | dev accuracy (200) | dev loss | median step s | cell wall s | chosen |")
    w("|---|---:|---:|---:|---:|---:|---|")
    for m in LR_RATES:
        for r, lr in zip(lrs[m], LR_RATES[m]):
            if r is None:
                w("| %s | %s | pending | | | | |" % (METHOD_NAME[m], lr))
                continue
            w("| %s | %s | %.3f | %.3f | %.2f | %.0f | %s |" % (
                METHOD_NAME[m], lr, r["accuracy"], r["loss"], r["median_step"],
                r["cell"]["wall_s"], "**yes**" if chosen[m] == lr else ""))
    w("")
    w("LAMP (s = 1) uses LAMP's rate.")
    w("")

    # ---- reading
    w("## Reading")
    w("")
    w(HUMAN_BEGIN)
    w(human_reading())
    w(HUMAN_END)
    w("")
    w("### A factual first version (generated)")
    w("")
    w("*Generated from %d finished training cells; every statement below is recomputed when the "
      "report is rewritten, and a row with n < 3 is preliminary.*" % n_done)
    w("")
    any_line = False
    for t in TASKS:
        key, name = METRIC[t]
        la = [c["final"].get(key) for c in grid[(t, "lamp")]]
        if not la:
            continue
        ml, sl, nl = mean_std(la)
        parts = []
        for m in ("pt", "dpt", "lamp1"):
            if (t, m) not in grid:
                continue
            o = [c["final"].get(key) for c in grid[(t, m)]]
            if not o:
                continue
            mo, so, no = mean_std(o)
            spread = max(x for x in (sl, so) if x is not None) if (sl is not None or so is not None) else None
            verdict = "higher than" if ml > mo else "lower than" if ml < mo else "equal to"
            if spread is None:
                sig = "one seed each, so no spread to compare with"
            elif abs(ml - mo) > spread:
                sig = "the difference (%.3f) exceeds the larger seed std (%.3f)" % (abs(ml - mo), spread)
            else:
                sig = "the difference (%.3f) is within the larger seed std (%.3f)" % (abs(ml - mo), spread)
            parts.append("%s %s (%.3f, n = %d): %s" % (verdict, METHOD_NAME[m], mo, no, sig))
        b = bare[t]
        mj = maj[t]
        ref = []
        if b and b["eval"].get(key) is not None:
            ref.append("the bare model %.3f" % b["eval"][key])
        if mj:
            ref.append("the majority class %.3f" % mj[key])
        above = []
        if b and b["eval"].get(key) is not None:
            above.append("%s the bare model" % ("above" if ml > b["eval"][key] else "not above"))
        if mj:
            above.append("%s the majority class" % ("above" if ml > mj[key] else "not above"))
        w("- **%s** (%s): LAMP %.3f (n = %d), %s; %s. Reference: %s." % (
            t, name, ml, nl, " and ".join(above) or "no reference yet",
            "; ".join(parts) if parts else "no other method finished yet", ", ".join(ref)))
        any_line = True
    if not any_line:
        w("- Nothing to read yet: no LAMP grid cell has finished.")
    w("")

    # ---- how the grid runs and how to repeat a cell
    w("## How the grid runs")
    w("")
    w("```sh\nnohup nice -n 19 ./scripts/results.sh > results/grid.log 2>&1 &   # run or continue\n"
      "./scripts/results.sh --dry-run        # each cell and its state (done, resume, new, stale)\n"
      "./scripts/results.sh --report-only    # rewrite this file\n```")
    w("")
    w("Order: the learning-rate search, then seed 0 of every cell (the bare model first in each "
      "task), then the BoolQ/COPA/WiC rows, then seed 1, then seed 2, so that an unfinished grid "
      "has balanced rows. Each cell is one folder, `results/runs/<task>-<method>-s<seed>/` "
      "(`lamp1` is LAMP with `--pool 1`; `<task>-bare` and `<task>-from-<source>` are `lamp eval` "
      "cells), holding `cell.json` (the exact command, the lamp commit, the device, start and end "
      "time, wall seconds per session, the fingerprint), and lamp's `summary.json` and "
      "`metrics.jsonl` (or `eval.json`, lamp eval's JSON line). Only these small files are kept in "
      "git (`results/.gitignore`); checkpoints, adapters and logs stay on the machine.")
    w("")
    w("Finished cells are skipped; an interrupted one (a checkpoint, no summary) continues with "
      "`--resume`, which lamp makes bit-identical to an uninterrupted run. **A cell is rerun when "
      "the code changes the training numbers**: at the start of each invocation the script trains "
      "a fixed 3-step SST-2 LAMP run (`--steps 3 --batch 8 --max-tokens 64 --eval-every 0 "
      "--final-eval-max 8`, seed 0) and takes its three step losses and its 8-example dev loss, "
      "printed to 6 digits, as the fingerprint (cached per commit and binary in "
      "`results/.fingerprint/`). Every `cell.json` stores the fingerprint it ran under; a cell "
      "whose fingerprint differs from the current one is moved to `results/stale/` and run again. "
      "A commit that changes no number (like the ones adding these results) reruns nothing.")
    w("")
    w("## How to repeat a cell")
    w("")
    w("From the repository root, with the build and the model of the README, and the data in "
      "`../shared/data`. Give another `--out` (or delete the folder) to rerun a cell whose folder "
      "exists. The learning rates are the search's choices: %s." % ", ".join(
          "%s %s" % (METHOD_NAME[m], chosen[m] or "(pending)") for m in LR_RATES))
    w("")
    ex = {}
    for (t, m), cs in grid.items():
        for c in cs:
            ex.setdefault(m, c["cell"]["command"])
    w("```sh")
    for m in METHODS:
        if m in ex:
            w("# %s, e.g. %s" % (METHOD_NAME[m], ex[m].split("--out ")[-1]))
            w(ex[m])
    for t in TASKS + VAL_TASKS:
        if bare[t]:
            w("# the bare model")
            w(bare[t]["cell"]["command"])
            break
    for t in VAL_TASKS:
        if transfer[t]:
            w("# a transfer row")
            w(transfer[t]["cell"]["command"])
            break
    w("```")
    w("")
    w("A transfer row needs its source cell's checkpoint, which git does not keep: train that "
      "cell first (on a fresh clone the script does so itself, moving the old record to "
      "`results/stale/`). On PoCL's CPU device a cell is deterministic: rte-lamp-s0, trained "
      "on 2026-12-02 on an AMD EPYC and again on 2026-12-03 on an Intel Xeon at a later "
      "commit, gave the same loss, gradient norm and accuracy at every step. After a training cell the script also scores the final prompt on the first "
      "%d dev examples, `./build/lamp eval --checkpoint <cell>/checkpoint.safetensors --limit %d` "
      "(`step%d_eval.json`), for the curve above." % (EVAL_MAX, EVAL_MAX, STEPS))
    w("")
    w("Every finished cell's command (`cell.json`):")
    w("")
    w("<details><summary>commands</summary>")
    w("")
    w("```sh")
    for r in (r for v in lrs.values() for r in v if r):
        w(r["cell"]["command"])
    for t in TASKS + VAL_TASKS:
        if bare[t]:
            w(bare[t]["cell"]["command"])
    for (t, m), cs in grid.items():
        for c in cs:
            w(c["cell"]["command"])
    for t in VAL_TASKS:
        if transfer[t]:
            w(transfer[t]["cell"]["command"])
    w("```")
    w("")
    w("</details>")
    w("")

    os.makedirs(os.path.dirname(OUT_MD), exist_ok=True)
    with open(OUT_MD + ".tmp", "w") as f:
        f.write("\n".join(L))
    os.replace(OUT_MD + ".tmp", OUT_MD)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
