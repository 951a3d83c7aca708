#!/usr/bin/env bash
# Runs lamp's libFuzzer targets (fuzz/, see fuzz/README.md), building them first into
# build-fuzz/ (clang, ASan + UBSan) when needed.
#
#   scripts/fuzz.sh TARGET SECONDS [LIBFUZZER-FLAGS...]
#       fuzzes one target (gguf, safetensors, tokenizer_json, dataset, config_json) for SECONDS,
#       starting from its seeds (fuzz/corpus/TARGET) and regressions; the inputs it finds are
#       kept in build-fuzz/corpus/TARGET for the next run, and any crash, leak, timeout or
#       out-of-memory input is copied into fuzz/regressions/TARGET/ (commit it with the fix).
#   scripts/fuzz.sh --replay
#       runs every seed and regression file of every target through its fuzzer once.
#   scripts/fuzz.sh --ci
#       --replay, then each target for FUZZ_CI_SECONDS (default 12) from its seeds alone.
#   scripts/fuzz.sh --build      builds the fuzzers and nothing else
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_JOBS (build jobs, default nproc),
# FUZZ_TIMEOUT (seconds one input may take, default 25), FUZZ_CI_SECONDS, FUZZ_VERBOSE=1 (show
# libFuzzer's output as it runs), CC (default clang). Exits non-zero when a target fails.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${FUZZ_BUILD_DIR:-build-fuzz}
targets=(gguf safetensors tokenizer_json dataset config_json)
timeout=${FUZZ_TIMEOUT:-25}

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2
  exit 2
}

build_fuzzers() {
  command -v "${CC:-clang}" >/dev/null ||
    { echo "fuzz: ${CC:-clang} not found (Debian packages clang and libclang-rt-dev)" >&2; exit 1; }
  # runtime/clblast_params.cpp is C++: clang++ too (a folder configured before lamp had a C++
  # file, with g++ for C++, is configured again)
  if [[ ! -f "$build/CMakeCache.txt" ]] ||
    ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang' "$build/CMakeCache.txt"; then
    cmake -S . -B "$build" -DCMAKE_C_COMPILER="${CC:-clang}" -DCMAKE_CXX_COMPILER="${CXX:-clang++}" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DLAMP_BUILD_FUZZ=ON -DLAMP_BUILD_TESTS=OFF -DLAMP_BUILD_BENCH=OFF -DLAMP_BUILD_CLI=OFF \
      -DLAMP_WITH_MPI=OFF >/dev/null
  fi
  cmake --build "$build" --target fuzzers -j "${FUZZ_JOBS:-$(nproc)}" >/dev/null
}

# The input folders of a target that exist: its seeds, then its regressions.
inputs() {
  local d
  for d in "fuzz/corpus/$1" "fuzz/regressions/$1"; do
    [[ -d "$d" ]] && printf '%s\n' "$d"
  done
  return 0
}

# Runs the fuzzer of target $1 with the remaining arguments, its log in $build/fuzz-logs/.
# Crash inputs go to fuzz/regressions/$1/. Prints a summary line; returns libFuzzer's status.
run_fuzzer() {
  local t=$1
  shift
  local bin="$build/fuzz/fuzz_$t" log="$build/fuzz-logs/$t.log" art="$build/fuzz-artifacts/$t/"
  mkdir -p "$build/fuzz-logs" "$art"
  local dict=()
  [[ -f "fuzz/dict/$t.dict" ]] && dict=("-dict=fuzz/dict/$t.dict")
  local rc=0 start=$SECONDS
  # libFuzzer runs each input under ASan, UBSan (which aborts on undefined behaviour) and LSan.
  if [[ ${FUZZ_VERBOSE:-0} == 1 ]]; then
    "$bin" -artifact_prefix="$art" -timeout="$timeout" -print_final_stats=1 "${dict[@]}" "$@" \
      2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
  else
    "$bin" -artifact_prefix="$art" -timeout="$timeout" -print_final_stats=1 "${dict[@]}" "$@" \
      >"$log" 2>&1 || rc=$?
  fi
  local found=0 f
  for f in "$art"crash-* "$art"leak-* "$art"timeout-* "$art"oom-* "$art"slow-unit-*; do
    [[ -e "$f" ]] || continue
    mkdir -p "fuzz/regressions/$t"
    cp "$f" "fuzz/regressions/$t/" && rm -f "$f"
    echo "fuzz: $t: kept fuzz/regressions/$t/$(basename "$f")" >&2
    found=1
  done
  local execs cov
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1) ||
    true
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*') || true
  printf 'fuzz: %-15s %s, %s executions, cov %s, %ss\n' "$t" \
    "$([[ $rc == 0 && $found == 0 ]] && echo ok || echo "FAILED (status $rc)")" \
    "${execs:-?}" "${cov:-?}" "$((SECONDS - start))"
  if [[ $rc != 0 || $found != 0 ]]; then
    if [[ ${FUZZ_VERBOSE:-0} != 1 ]]; then
      # the report from its first line (sanitizer, failed check, timeout or out-of-memory)
      local at
      at=$(grep -nE '^==[0-9]+==|runtime error:|fuzz check failed|^ALARM|out-of-memory|ERROR: libFuzzer' \
        "$log" | head -1 | cut -d: -f1) || true
      if [[ -n $at ]]; then sed -n "${at},$((at + 60))p" "$log" >&2; else tail -n 40 "$log" >&2; fi
    fi
    return 1
  fi
}

replay() {
  local t fail=0 dirs
  for t in "${targets[@]}"; do
    mapfile -t dirs < <(inputs "$t")
    ((${#dirs[@]})) || continue
    run_fuzzer "$t" -runs=0 "${dirs[@]}" || fail=1
  done
  return $fail
}

fuzz_for() {
  local t=$1 seconds=$2
  shift 2
  local work="$build/corpus/$t" dirs
  mkdir -p "$work"
  mapfile -t dirs < <(inputs "$t")
  run_fuzzer "$t" -max_total_time="$seconds" "$@" "$work" "${dirs[@]}"
}

[[ $# -ge 1 ]] || usage
case "$1" in
  --build)
    build_fuzzers
    ;;
  --replay)
    build_fuzzers
    replay
    ;;
  --ci)
    build_fuzzers
    fail=0
    replay || fail=1
    # fuzz from the seeds alone, into a fresh folder, so that CI does not depend on old runs
    for t in "${targets[@]}"; do
      work=$(mktemp -d "${TMPDIR:-/tmp}/lamp-fuzz-$t.XXXXXX")
      mapfile -t dirs < <(inputs "$t")
      run_fuzzer "$t" -max_total_time="${FUZZ_CI_SECONDS:-12}" "$work" "${dirs[@]}" || fail=1
      rm -rf "$work"
    done
    if ((fail)); then
      echo "fuzz: failures above; their inputs are in fuzz/regressions/ (commit them with the fix)" >&2
      exit 1
    fi
    echo "fuzz: all passed"
    ;;
  -*)
    usage
    ;;
  *)
    [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || usage
    [[ " ${targets[*]} " == *" $1 "* ]] || { echo "fuzz: unknown target $1 (${targets[*]})" >&2; exit 2; }
    build_fuzzers
    fuzz_for "$@"
    ;;
esac
