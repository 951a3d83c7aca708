#!/usr/bin/env bash
# Data-parallel scaling of `lamp train` on one machine: 1 rank against R ranks, each rank on one
# core (PoCL limited to one thread, ranks bound to cores), each with a micro-batch of B examples
# of T tokens (weak scaling: the global batch grows with the ranks). Writes a Markdown table:
# steps/s, tokens/s, scaling efficiency (tokens/s of R ranks over R times 1 rank's) and the mean
# gradient exchange per step.
# Usage: bench/ranks.sh [RANKS (2)] [STEPS (6)] [MODEL] ; env B (8), T (128), LAMP (build/lamp)
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=${1:-2}
steps=${2:-6}
model=${3:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
B=${B:-8}
T=${T:-128}
lamp=${LAMP:-build/lamp}
work=$(mktemp -d "${TMPDIR:-/tmp}/lamp-ranks.XXXXXX")
trap 'rm -rf "$work"' EXIT

# texts longer than T tokens, so that every example is cut to exactly T
python3 - "$work/data.tsv" "$T" <<'PY'
import random, sys
words = "the a film story actor scene music light long slow warm dark bright quiet loud".split()
rng = random.Random(1)
with open(sys.argv[1], "w") as f:
    f.write("text\tlabel\n")
    for i in range(256):
        f.write(" ".join(rng.choice(words) for _ in range(int(sys.argv[2]) * 2)) + "\t%d\n" % (i % 2))
PY
flags=(train --model "$model" --task custom --fields text --labels 0,1 --words ' no| yes'
       --template '{text}\nAnswer:' --max-tokens "$T" --batch "$B" --steps "$steps"
       --eval-every 0 --final-eval-max 8 --train-file "$work/data.tsv" --dev-file "$work/data.tsv")
export POCL_MAX_PTHREAD_COUNT=1
taskset -c 0 "$lamp" "${flags[@]}" --out "$work/r1" > "$work/r1.log"
mpirun --allow-run-as-root --oversubscribe --bind-to core -np "$ranks" -x POCL_MAX_PTHREAD_COUNT \
  "$lamp" "${flags[@]}" --out "$work/r$ranks" > "$work/r$ranks.log"
python3 - "$work" "$ranks" "$B" "$T" "$(uptime)" <<'PY'
import json, sys
work, ranks, B, T, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
one = json.load(open(f"{work}/r1/summary.json"))
many = json.load(open(f"{work}/r{ranks}/summary.json"))
print(f"device {one['device']}; {B} x {T} tokens per rank; machine load: {load.split('load average:')[-1].strip()}\n")
print("| ranks | global batch | step s | steps/s | tokens/s | efficiency | exchange ms/step |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for r, s in ((1, one), (ranks, many)):
    eff = s["tokens_per_s"] / (r * one["tokens_per_s"])
    print(f"| {r} | {r * B} | {s['mean_step_s']:.3f} | {1 / s['mean_step_s']:.3f} | "
          f"{s['tokens_per_s']:.1f} | {eff:.2f} | {1000 * s.get('mean_exchange_s', 0):.2f} |")
PY
