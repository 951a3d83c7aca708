#!/usr/bin/env bash
# Soak test of checkpoints: a 1000-step run of the tiny test model checkpointing every 10 steps,
# killed with SIGKILL at random moments and resumed each time until it finishes, against the
# same run never interrupted. Passes when the final parameters and AdamW moments are identical
# (bit for bit) and the run folder holds only lamp's files. Prints the kills survived.
# Usage: bench/soak.sh [STEPS (1000)] [SEED (1)] ; env LAMP (build/lamp)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-1000}
seed=${2:-1}
lamp=${LAMP:-build/lamp}
work=$(mktemp -d "${TMPDIR:-/tmp}/lamp-soak.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 - "$work/train.tsv" <<'PY'
import random, sys
rng = random.Random(3)
with open(sys.argv[1], "w") as f:
    f.write("sentence\tlabel\n")
    for i in range(200):
        up = rng.random() < 0.6
        f.write(" ".join("".join(rng.choice("cdefghijklmnop") for _ in range(4)) for _ in range(3))
                + (" up" if up else " down") + "\t%d\n" % up)
PY
flags=(train --model tests/data/tiny.gguf --task sst2 --template '{sentence} =' --words ' a| b'
       --max-tokens 40 --length 8 --rank 2 --batch 8 --steps "$steps" --lr 0.05 --warmup 10
       --eval-every 100 --eval-max 16 --final-eval-max 16 --checkpoint-every 10
       --train-file "$work/train.tsv" --dev-file "$work/train.tsv")
"$lamp" "${flags[@]}" --out "$work/whole" > /dev/null

RANDOM=$seed
kills=0 starts=0
while :; do
  args=("${flags[@]}" --out "$work/soak")
  [ -f "$work/soak/checkpoint.safetensors" ] && args+=(--resume)
  "$lamp" "${args[@]}" > "$work/soak.log" 2>&1 &
  pid=$!
  starts=$((starts + 1))
  # 0.05 to 1.2 s: inside start-up, steps, checkpoint writes and evaluations alike
  sleep "$(printf '0.%02d' $((RANDOM % 95 + 5)))"
  [ $((RANDOM % 5)) = 0 ] && sleep 0.$((RANDOM % 9 + 1))
  if kill -KILL "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    kills=$((kills + 1))
  else
    wait "$pid" && break
    echo "soak: a run failed after $kills kills:" >&2
    cat "$work/soak.log" >&2
    exit 1
  fi
  [ "$starts" -gt 2000 ] && { echo "soak: no end after 2000 starts" >&2; exit 1; }
done
python3 - "$work/whole" "$work/soak" "$kills" <<'PY'
import json, os, struct, sys
def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in head.items()
            if k != "__metadata__"}, head["__metadata__"]
a, ma = tensors(sys.argv[1] + "/checkpoint.safetensors")
b, mb = tensors(sys.argv[2] + "/checkpoint.safetensors")
same = a == b and all(ma[k] == mb[k] for k in ("train.step", "train.epoch", "train.batch",
                                              "train.adam_steps"))
expected = {"checkpoint.safetensors", "metrics.jsonl", "plot.svg", "summary.json", "adapter",
            "adapter/adapter_model.safetensors", "adapter/adapter_config.json"}
found = set()
for root, dirs, files in os.walk(sys.argv[2]):
    rel = os.path.relpath(root, sys.argv[2])
    for name in dirs + files:
        found.add(name if rel == "." else rel + "/" + name)
stray = sorted(found - expected)
print(f"soak: {sys.argv[3]} kills survived; parameters and moments "
      f"{'identical' if same else 'DIFFERENT'} to the uninterrupted run; stray files: "
      f"{', '.join(stray) if stray else 'none'}")
sys.exit(0 if same and not stray else 1)
PY
