#!/usr/bin/env bash
# The main job on a fresh machine: installs and builds (setup.sh), fetches the model once
# (fetch-model.sh), lists the OpenCL devices, then trains a LAMP prompt for SmolLM2-135M on
# SST-2 with the defaults and evaluates it on the dev set. Arguments go to `lamp train`
# (e.g. --steps 20 --final-eval-max 100 for a short look; --help for every flag).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
model=$(./scripts/fetch-model.sh)
./build/lamp devices
# The GGUF does not name its Hugging Face repository; the adapter's config needs it.
exec ./build/lamp train --model "$model" --base-model HuggingFaceTB/SmolLM2-135M-Instruct "$@"
