#!/usr/bin/env bash
# The results grid of docs/RESULTS.md: runs it cell by cell, skips finished cells, resumes
# interrupted ones, and rewrites docs/RESULTS.md after each cell (scripts/results_report.py).
#
#   ./scripts/results.sh                  run (or continue) the whole grid
#   ./scripts/results.sh --only rte       only the grid cells of one task (the lr search still
#                                         comes first: the grid needs its rates)
#   ./scripts/results.sh --max-cells 3    stop after running 3 cells (skipped cells not counted)
#   ./scripts/results.sh --dry-run        print the cells and what would happen to each
#   ./scripts/results.sh --report-only    only rewrite docs/RESULTS.md
#
# Background run, as for the full grid (about 8 hours on the 2-core development machine):
#   nohup nice -n 19 ./scripts/results.sh > results/grid.log 2>&1 &
#
# Order: fingerprint, the learning-rate search (SST-2, seed 0), seed 0 of every cell (the bare
# model included), the validation-only tasks (zero-shot and transfer), then seed 1, then seed 2.
# One lamp process at a time, each under `nice -n 19`.
#
# A cell is one folder: results/lr-search/<name>/ or results/runs/<name>/. It is
#   - finished when its cell.json says "done", its summary.json (eval.json for `lamp eval`
#     cells) parses, and its fingerprint is the current one: skipped;
#   - interrupted when it has a checkpoint and a cell.json with the current fingerprint but is
#     not finished: continued with `lamp train ... --resume`;
#   - stale when its fingerprint differs: moved to results/stale/ and run again.
# The fingerprint is the training numbers of the current build: the three step losses and the
# 8-example dev loss of a fixed 3-step SST-2 LAMP run, computed once per (commit, binary) and
# cached in results/.fingerprint/. A code change that changes no number keeps every cell; one
# that changes the arithmetic reruns them all.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LAMP=./build/lamp
NICE=(nice -n 19)
RES=results
REPORT=(python3 scripts/results_report.py)

# ---- the grid's budget (docs/RESULTS.md says why) ----------------------------------------
STEPS=100 BATCH=8 TOKENS=128 EVERY=25 EVAL_MAX=100 CKPT_EVERY=25
SEEDS=(0 1 2)
TASKS=(sst2 mrpc cola rte cb)
LAMP1_TASKS=(sst2 rte)          # LAMP with --pool 1
LR_LAMP=(0.01 0.03 0.1)
# PT's and DPT's 0.01: the first search had PT's best at its lower edge (0.03 ahead of 0.1 and
# 0.3), so both searches go one rate further down; PT's 0.003: its 0.01 then led again
LR_PT=(0.003 0.01 0.03 0.1 0.3)
LR_DPT=(0.01 0.03 0.1 0.3)
LR_EVAL=200                     # the search's final evaluation: the first 200 SST-2 dev examples
BOOLQ_LIMIT=500                 # BoolQ's 3,270 passages are long; its rows use the first 500
# validation-only tasks: the trained cell whose prompt is evaluated there (seed 0, LAMP)
declare -A TRANSFER=([boolq]=rte [copa]=cb [wic]=mrpc)
VAL_TASKS=(boolq copa wic)

only="" max_cells=0 report_only=0 dry=0 build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only=$2; shift 2 ;;
    --max-cells) max_cells=$2; shift 2 ;;
    --report-only) report_only=1; shift ;;
    --dry-run) dry=1; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "results.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

mkdir -p "$RES/runs" "$RES/lr-search" "$RES/.fingerprint"
if [ $report_only = 1 ]; then
  exec "${REPORT[@]}"
fi

# one grid at a time (a dry run only reads)
if [ $dry = 0 ]; then
  exec 9>"$RES/.lock"
  if ! flock -n 9; then
    echo "results.sh: another results.sh holds $RES/.lock" >&2
    exit 1
  fi
fi

log() { printf '[%s] %s\n' "$(date '+%F %T')" "$*"; }

if [ $build = 1 ] && [ $dry = 0 ]; then
  log "build: cmake --build build"
  "${NICE[@]}" cmake --build build -j1 --target lamp_cli >/dev/null
fi
[ -x "$LAMP" ] || { echo "results.sh: no $LAMP; build first" >&2; exit 1; }

COMMIT=$(git rev-parse HEAD)
DIRTY=false
# uncommitted changes to what builds lamp (not the results, the docs or this grid's scripts)
git diff --quiet HEAD -- . ':(exclude)results' ':(exclude)docs' ':(exclude)*.md' \
  ':(exclude)scripts/results.sh' ':(exclude)scripts/results_report.py' || DIRTY=true

# ---- a child lamp process that receives our SIGINT/SIGTERM (it checkpoints on them) -------
child=0 cur_dir=""
on_signal() {
  log "signal: stopping the running cell (it checkpoints)"
  [ $child != 0 ] && kill -TERM "$child" 2>/dev/null || true
  [ $child != 0 ] && wait "$child" 2>/dev/null || true
  [ -n "$cur_dir" ] && [ -f "$cur_dir/cell.json" ] && cell_json "$cur_dir" end status=interrupted || true
  exit 130
}
trap on_signal INT TERM

run_child() { # LOGFILE CMD...
  local logf=$1; shift
  "${NICE[@]}" "$@" >>"$logf" 2>&1 &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=0
  return $rc
}

# ---- fingerprint ---------------------------------------------------------------------------
fingerprint() {
  local bin key dir
  bin=$(sha256sum "$LAMP" | cut -c1-12)
  key="${COMMIT:0:12}-$bin"
  if [ -s "$RES/.fingerprint/$key.txt" ]; then
    cat "$RES/.fingerprint/$key.txt"
    return
  fi
  dir="$RES/.fingerprint/$key.run"
  rm -rf "$dir"
  log "fingerprint: 3-step SST-2 LAMP run for $key" >&2
  run_child "$RES/.fingerprint/$key.log" "$LAMP" train --task sst2 --method lamp --seed 0 \
    --batch 8 --steps 3 --max-tokens 64 --eval-every 0 --final-eval-max 8 --out "$dir" \
    || { echo "results.sh: the fingerprint run failed; see $RES/.fingerprint/$key.log" >&2; exit 1; }
  python3 - "$dir/metrics.jsonl" >"$RES/.fingerprint/$key.txt" <<'EOF'
import json, sys
steps, ev = [], None
for line in open(sys.argv[1]):
    d = json.loads(line)
    if "split" in d:
        ev = d["loss"]
    else:
        steps.append(d["loss"])
print(" ".join("%.6f" % x for x in steps) + " | %.6f" % ev)
EOF
  rm -rf "$dir"
  cat "$RES/.fingerprint/$key.txt"
}

# ---- cell.json -----------------------------------------------------------------------------
# cell_json DIR ACTION [key=value...]: start (a new session), end (session done; "done" if
# status=done), read fields with `get KEY`.
cell_json() {
  python3 - "$@" <<'EOF'
import json, os, sys, time
d, action, kv = sys.argv[1], sys.argv[2], dict(a.split("=", 1) for a in sys.argv[3:])
path = os.path.join(d, "cell.json")
try:
    c = json.load(open(path))
except (OSError, ValueError):
    c = {}
now = time.time()
if action == "get":
    v = c.get(kv["key"], "")
    print(v if not isinstance(v, (dict, list)) else json.dumps(v))
    sys.exit(0)
if action == "start":
    if kv.get("fresh") == "1":
        c = {}
    c.update({"cell": kv["cell"], "kind": kv["kind"], "command": kv["command"],
              "commit": kv["commit"], "dirty_tree": kv["dirty"] == "true",
              "fingerprint": kv["fingerprint"], "status": "running"})
    c.setdefault("start", time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now)))
    c.setdefault("sessions", []).append({"start_epoch": now, "resume": kv.get("resume") == "1",
                                         "commit": kv["commit"]})
    c.setdefault("wall_s", 0.0)
elif action == "end":
    s = c["sessions"][-1]
    s["wall_s"] = round(now - s["start_epoch"], 1)
    c["wall_s"] = round(sum(x.get("wall_s", 0) for x in c["sessions"]), 1)
    c["end"] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now))
    c["status"] = kv.get("status", "running")
    summ = os.path.join(d, "summary.json")
    if os.path.exists(summ):
        try:
            c["device"] = json.load(open(summ)).get("device", "")
        except ValueError:
            pass
    if kv.get("device"):
        c["device"] = kv["device"]
    if kv.get("resume_steps"):
        c["resume_steps"] = [int(x) for x in kv["resume_steps"].split(",") if x]
tmp = path + ".tmp"
json.dump(c, open(tmp, "w"), indent=1)
os.replace(tmp, path)
EOF
}

json_ok() { [ -s "$1" ] && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1" 2>/dev/null; }

quote() { local out="" a; for a in "$@"; do out+="$(printf '%q' "$a") "; done; printf '%s' "${out% }"; }

ran=0
budget_left() { [ "$max_cells" = 0 ] || [ $ran -lt "$max_cells" ]; }

# last step in a run folder's metrics.jsonl (0 when none)
last_step() {
  [ -s "$1/metrics.jsonl" ] || { echo 0; return; }
  python3 - "$1/metrics.jsonl" <<'EOF'
import json, sys
n = 0
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if "split" not in d:
        n = max(n, d["step"])
print(n)
EOF
}

stale() { # DIR: moves a cell folder out of the way
  local to="$RES/stale/$(basename "$1")-$(date +%Y%m%d-%H%M%S)"
  mkdir -p "$RES/stale"
  mv "$1" "$to"
  log "  stale: moved to $to"
}

# cell_state DIR RESULTFILE -> done | resume | new
cell_state() {
  local dir=$1 result=$2 fp status
  [ -d "$dir" ] || { echo new; return; }
  fp=$(cell_json "$dir" get key=fingerprint)
  status=$(cell_json "$dir" get key=status)
  if [ "$fp" != "$FP" ]; then
    echo stale; return
  fi
  if [ "$status" = done ] && json_ok "$dir/$result"; then echo done; return; fi
  echo resume
}

# train_cell NAME DIR POST_EVAL(0|1) LAMP-TRAIN-ARGS...
train_cell() {
  local name=$1 dir=$2 post=$3; shift 3
  local args=("$@" --out "$dir")
  local cmd=("$LAMP" train "${args[@]}")
  local state resume=0
  state=$(cell_state "$dir" summary.json)
  if [ $dry = 1 ]; then echo "$state  $name: $(quote "${cmd[@]}")"; return; fi
  [ "$state" = done ] && { log "skip $name (done)"; return; }
  budget_left || { log "stop: --max-cells $max_cells reached"; finish; }
  if [ "$state" = stale ]; then stale "$dir"; state=new; fi
  mkdir -p "$dir"
  if [ "$state" = resume ] && [ ! -f "$dir/checkpoint.safetensors" ] && ! json_ok "$dir/summary.json"; then
    # started but no checkpoint yet: start over
    rm -f "$dir/metrics.jsonl" "$dir/summary.json"
    state=new
  fi
  local resume_steps
  resume_steps=$(python3 -c 'import json,sys
try: print(",".join(str(x) for x in json.load(open(sys.argv[1])).get("resume_steps", [])))
except Exception: print("")' "$dir/cell.json")
  if [ "$state" = resume ]; then resume=1; fi
  cell_json "$dir" start cell="$name" kind=train command="$(quote "${cmd[@]}")" commit="$COMMIT" \
    dirty=$DIRTY fingerprint="$FP" resume=$resume fresh=$([ $resume = 0 ] && echo 1 || echo 0)
  ran=$((ran + 1))
  cur_dir=$dir
  local rc=0
  if [ $resume = 1 ] && json_ok "$dir/summary.json"; then
    log "run $name: training finished earlier; only the step-100 evaluation is left"
  elif [ $resume = 1 ]; then
    local at
    at=$(last_step "$dir")
    resume_steps="${resume_steps:+$resume_steps,}$at"
    log "resume $name at step $at"
    run_child "$dir/train.log" "${cmd[@]}" --resume || rc=$?
  else
    log "run $name: $(quote "${cmd[@]}")"
    : >"$dir/train.log"
    run_child "$dir/train.log" "${cmd[@]}" || rc=$?
  fi
  if [ $rc != 0 ] || ! json_ok "$dir/summary.json"; then
    cell_json "$dir" end status=failed resume_steps="$resume_steps"
    log "FAILED $name (rc $rc); see $dir/train.log"
    return 0
  fi
  if [ "$post" = 1 ] && ! json_ok "$dir/step${STEPS}_eval.json"; then
    # the last interval evaluation is replaced by the full final one: score the final prompt on
    # the same first EVAL_MAX dev examples as the interval evaluations, for the curves
    local ecmd=("$LAMP" eval --checkpoint "$dir/checkpoint.safetensors" --limit "$EVAL_MAX")
    run_child "$dir/step_eval.log" "${ecmd[@]}" || rc=$?
    if [ $rc != 0 ] || ! tail -n 1 "$dir/step_eval.log" | python3 -c 'import json,sys; json.loads(sys.stdin.read())' 2>/dev/null; then
      cell_json "$dir" end status=failed resume_steps="$resume_steps"
      log "FAILED $name: the step-$STEPS evaluation (rc $rc); see $dir/step_eval.log"
      return 0
    fi
    tail -n 1 "$dir/step_eval.log" | sed "s/\"step\": 0/\"step\": $STEPS/" >"$dir/step${STEPS}_eval.json"
  fi
  cell_json "$dir" end status=done resume_steps="$resume_steps"
  cur_dir=""
  log "done $name: $(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); s=json.load(open(sys.argv[2])); print("%.0f s wall, final dev accuracy %.4f on %d" % (c["wall_s"], s["final_dev_accuracy"], s["final_dev_examples"]))' "$dir/cell.json" "$dir/summary.json")"
  "${REPORT[@]}" >/dev/null || log "report failed (not fatal)"
}

# eval_cell NAME DIR LAMP-EVAL-ARGS...
eval_cell() {
  local name=$1 dir=$2; shift 2
  local cmd=("$LAMP" eval "$@")
  local state
  state=$(cell_state "$dir" eval.json)
  if [ $dry = 1 ]; then echo "$state  $name: $(quote "${cmd[@]}")"; return; fi
  [ "$state" = done ] && { log "skip $name (done)"; return; }
  budget_left || { log "stop: --max-cells $max_cells reached"; finish; }
  if [ "$state" = stale ]; then stale "$dir"; fi
  rm -rf "$dir"
  mkdir -p "$dir"
  cell_json "$dir" start cell="$name" kind=eval command="$(quote "${cmd[@]}")" commit="$COMMIT" \
    dirty=$DIRTY fingerprint="$FP" fresh=1
  ran=$((ran + 1))
  cur_dir=$dir
  log "run $name: $(quote "${cmd[@]}")"
  local rc=0
  run_child "$dir/eval.log" "${cmd[@]}" || rc=$?
  if [ $rc != 0 ] || ! tail -n 1 "$dir/eval.log" | python3 -c 'import json,sys; json.loads(sys.stdin.read())' 2>/dev/null; then
    cell_json "$dir" end status=failed
    log "FAILED $name (rc $rc); see $dir/eval.log"
    return 0
  fi
  tail -n 1 "$dir/eval.log" >"$dir/eval.json"
  local device
  device=$(sed -n 's/^device \(.*\), setup .*/\1/p' "$dir/eval.log" | tail -n 1)
  cell_json "$dir" end status=done device="$device"
  cur_dir=""
  log "done $name: $(cat "$dir/eval.json")"
  "${REPORT[@]}" >/dev/null || log "report failed (not fatal)"
}

finish() {
  [ $dry = 1 ] || "${REPORT[@]}" >/dev/null || true
  log "results.sh: stopped; run it again to continue"
  exit 0
}

budget=(--steps $STEPS --batch $BATCH --max-tokens $TOKENS)
want_task() { [ -z "$only" ] || [ "$only" = "$1" ]; }

if [ $dry = 1 ]; then
  # a dry run computes nothing: the fingerprint cached for this commit, else for this binary
  bin=$(sha256sum "$LAMP" | cut -c1-12)
  FP=$(cat "$RES/.fingerprint/${COMMIT:0:12}-$bin.txt" 2>/dev/null ||
       cat "$(ls -t "$RES"/.fingerprint/*-"$bin".txt 2>/dev/null | head -n 1)" 2>/dev/null || echo "?")
else
  FP=$(fingerprint)
fi
log "commit $COMMIT (dirty tree: $DIRTY), fingerprint $FP"

# ---- 1. the learning-rate search -----------------------------------------------------------
lr_cell() { # METHOD LR
  local m=$1 lr=$2
  train_cell "lr-search sst2-$m-lr$lr-s0" "$RES/lr-search/sst2-$m-lr$lr-s0" 0 \
    --task sst2 --method "$m" --seed 0 --lr "$lr" "${budget[@]}" \
    --eval-every 0 --final-eval-max $LR_EVAL --checkpoint-every $CKPT_EVERY
}
for lr in "${LR_LAMP[@]}"; do lr_cell lamp "$lr"; done
for lr in "${LR_PT[@]}"; do lr_cell pt "$lr"; done
for lr in "${LR_DPT[@]}"; do lr_cell dpt "$lr"; done

declare -A LR
for m in lamp pt dpt; do
  case $m in lamp) rates=("${LR_LAMP[@]}") ;; pt) rates=("${LR_PT[@]}") ;; dpt) rates=("${LR_DPT[@]}") ;; esac
  if [ $dry = 1 ]; then LR[$m]=$("${REPORT[@]}" --best-lr "$m" "${rates[@]}" 2>/dev/null || echo "?"); continue; fi
  LR[$m]=$("${REPORT[@]}" --best-lr "$m" "${rates[@]}") || { log "the lr search for $m is not finished"; finish; }
done
log "learning rates: lamp ${LR[lamp]}, pt ${LR[pt]}, dpt ${LR[dpt]}"

# ---- 2. the grid ---------------------------------------------------------------------------
grid_cell() { # TASK METHOD SEED   (METHOD: lamp, lamp1, pt, dpt)
  local t=$1 m=$2 s=$3 margs
  case "$m" in
    lamp1) margs=(--method lamp --pool 1 --lr "${LR[lamp]}") ;;
    *) margs=(--method "$m" --lr "${LR[$m]}") ;;
  esac
  train_cell "$t-$m-s$s" "$RES/runs/$t-$m-s$s" 1 --task "$t" "${margs[@]}" --seed "$s" \
    "${budget[@]}" --eval-every $EVERY --eval-max $EVAL_MAX --final-eval-max 0 \
    --checkpoint-every $CKPT_EVERY
}
bare_cell() { # TASK [LIMIT]
  local extra=()
  [ -n "${2:-}" ] && extra=(--limit "$2")
  eval_cell "$1-bare" "$RES/runs/$1-bare" --no-prompt --task "$1" --max-tokens $TOKENS "${extra[@]}"
}
seed_cells() { # SEED
  local s=$1 t m
  for t in "${TASKS[@]}"; do
    want_task "$t" || continue
    [ "$s" = 0 ] && bare_cell "$t"
    for m in lamp pt dpt; do grid_cell "$t" "$m" "$s"; done
    [[ " ${LAMP1_TASKS[*]} " == *" $t "* ]] && grid_cell "$t" lamp1 "$s"
  done
  return 0
}

seed_cells 0

# ---- 3. validation-only tasks: zero-shot and one transfer row each --------------------------
for t in "${VAL_TASKS[@]}"; do
  want_task "$t" || continue
  limit=""
  [ "$t" = boolq ] && limit=$BOOLQ_LIMIT
  bare_cell "$t" $limit
  src=${TRANSFER[$t]}
  ck="$RES/runs/$src-lamp-s0/checkpoint.safetensors"
  if [ $dry = 0 ] && [ "$(cell_state "$RES/runs/$src-lamp-s0" summary.json)" != done ]; then
    log "skip $t-from-$src-lamp-s0: $src-lamp-s0 is not finished"
    continue
  fi
  if [ $dry = 0 ] && [ ! -f "$ck" ] && [ "$(cell_state "$RES/runs/$t-from-$src-lamp-s0" eval.json)" != done ]; then
    # the repository keeps no checkpoints: a fresh clone trains the source prompt again (the
    # grid's runs are deterministic on a CPU, so it is the same prompt) and keeps its old record
    log "no checkpoint in $src-lamp-s0 (a fresh clone): training it again for $t-from-$src-lamp-s0"
    stale "$RES/runs/$src-lamp-s0"
    grid_cell "$src" lamp 0
  fi
  extra=()
  [ -n "$limit" ] && extra=(--limit "$limit")
  eval_cell "$t-from-$src-lamp-s0" "$RES/runs/$t-from-$src-lamp-s0" --checkpoint "$ck" \
    --task "$t" --max-tokens $TOKENS "${extra[@]}"
done

seed_cells 1
seed_cells 2

[ $dry = 1 ] || "${REPORT[@]}" >/dev/null
log "results.sh: the grid is complete"
