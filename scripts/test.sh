#!/usr/bin/env bash
# Sets up (see setup.sh), builds with warnings as errors, runs the tests on PoCL and on Intel's
# OpenCL runtime (the GPU kernel profile for the programs it changes; see below), the kernel
# tests under Oclgrind (oclgrind.sh), the whole suite again in the sanitizer build (see
# sanitize.sh), fuzzing, then builds the examples against the installed package (CMake and
# pkg-config) and runs a short benchmark smoke run.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
# Most of a cold test run is kernel compilation (PoCL's and Intel's compilers, CLBlast's kernels
# in every process), one thread per process: two test programs at a time use both cores.
jobs=$(nproc)
# Each phase's wall time, so that the CI budget (25 minutes) can be kept phase by phase.
phase_start=$SECONDS
phase() {
  echo "test: phase '$1' took $((SECONDS - phase_start)) s (total $SECONDS s)"
  phase_start=$SECONDS
}
CMAKE_ARGS="-DLAMP_WERROR=ON ${CMAKE_ARGS:-}" BUILD_DIR="$build_dir" ./scripts/setup.sh

# The real model's tests need it; the others do not.
./scripts/fetch-model.sh >/dev/null
phase "setup, build and model"
# A missing real model or MPI fails the tests here instead of skipping them; so does the
# project's data folder when it is there (it lives beside the repository, not in it).
require_data=0
if [ -d ../shared/data ]; then require_data=1; else
  echo "test: no ../shared/data beside the repository: the real-data checks of test_data skip" >&2
fi
export LAMP_REQUIRE_MODEL=1 LAMP_REQUIRE_MPI=1 LAMP_REQUIRE_DATA=$require_data
# The kernel profile (LAMP_KERNEL_PROFILE) changes four things on a CPU device: the attention
# kernels' shape, the compressed outer product's tiles, the route of few-row products and the
# shape of the product on stored weights (dequant_gemm_rows); every other kernel builds the same
# under both. So every test runs with the automatic profile (CPU
# here), and with the GPU one only the programs that check those against a reference.
by_profile='^(test_llama_ops|test_prompt|test_prompt_init|test_gemm|test_dequant|test_model|test_model_cache|test_arch|test_train)$'
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs"
LAMP_KERNEL_PROFILE=gpu ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" -R "$by_profile"
phase "PoCL"

# The same on Intel's OpenCL CPU runtime, a second implementation (from PyPI, in the build tree),
# but for the tool's and MPI's programs: they drive kernels the others test here already, they
# check behaviour that does not depend on the implementation, and on this runtime, which builds
# CLBlast's kernels again in every process, they alone took 40% of its run.
if intel_env=$(./scripts/intel-runtime.sh --dir "$build_dir/intel-venv"); then
  (
    eval "$intel_env"
    ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" -E '^(test_cli|test_mpi)$'
    LAMP_KERNEL_PROFILE=gpu ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" \
      -R "$by_profile"
  )
else
  echo "test: Intel's OpenCL runtime is unavailable here (the reason is above): PoCL only" >&2
fi

# Every program that launches lamp's kernels, under Oclgrind with both profiles: zero reports.
phase "Intel's runtime"
./scripts/oclgrind.sh
phase "Oclgrind"
# The whole suite again under ASan, UBSan and LSan, with allocation-failure injection.
./scripts/sanitize.sh
phase "sanitizers"

# Fuzzing (fuzz/README.md): every seed and regression input replayed under ASan and UBSan, then
# each target fuzzed briefly (about a minute in all), in build-fuzz/ with clang.
if command -v clang >/dev/null; then
  ./scripts/fuzz.sh --ci
else
  echo "test: clang not found (scripts/setup.sh installs it): fuzzing skipped" >&2
fi
phase "fuzzing"

prefix="$PWD/$build_dir/install"
rm -rf "$prefix" "$build_dir/example" "$build_dir/examples"
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
cmake -S examples/embed_gemm -B "$build_dir/example" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >/dev/null
cmake --build "$build_dir/example" >/dev/null
LD_LIBRARY_PATH="$prefix/lib" "$build_dir/example/embed_gemm"
cc -std=c11 -Wall -Wextra -Werror examples/embed_gemm/main.c -o "$build_dir/example/embed_gemm_pc" \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs lamp) -lm
LD_LIBRARY_PATH="$prefix/lib" "$build_dir/example/embed_gemm_pc"

# The engine examples, against the installed package: train a prompt on the shared tiny model,
# then classify stdin with its checkpoint and with its PEFT adapter.
work="$build_dir/examples/run"
rm -rf "$work" && mkdir -p "$work"
for ex in train_prompt classify; do
  cmake -S "examples/$ex" -B "$build_dir/examples/$ex" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >/dev/null
  cmake --build "$build_dir/examples/$ex" >/dev/null
done
export LD_LIBRARY_PATH="$prefix/lib"
"$build_dir/examples/train_prompt/train_prompt" tests/data/tiny.gguf "$work" " a| b"
printf 'a lovely film\nslow and dull\n' |
  "$build_dir/examples/classify/classify" tests/data/tiny.gguf "$work/reviews.safetensors"
printf 'a lovely film\n' |
  "$build_dir/examples/classify/classify" tests/data/tiny.gguf "$work/adapter" sst2 " a| b"
unset LD_LIBRARY_PATH

"$build_dir/lamp" bench --quick --json "$build_dir/bench-quick.json" --md "$build_dir/bench-quick.md"
phase "examples and benchmark smoke run"
echo "test: all passed"
