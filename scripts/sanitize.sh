#!/usr/bin/env bash
# The sanitizer build: configures build-sanitize/ with AddressSanitizer, UndefinedBehaviorSanitizer
# and LeakSanitizer in every target (-DLAMP_SANITIZE=ON) and with allocation-failure injection
# (-DLAMP_FAULT_INJECTION=ON, which adds test_alloc_fail), builds it and runs the whole ctest
# suite there. Any ASan or UBSan report, and any leak whose stack is not in one of the drivers'
# libraries that tests/sanitize/lsan.supp names, fails its test. Exits non-zero on any failure.
# Needs what scripts/setup.sh installs; run that first on a fresh machine (scripts/test.sh does).
# Environment: SANITIZE_BUILD_DIR (default build-sanitize), CC (gcc or clang; read when the
# folder is first configured).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${SANITIZE_BUILD_DIR:-build-sanitize}
supp="$PWD/tests/sanitize"
start=$SECONDS

# The benchmarks are not run by ctest: not built here.
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLAMP_SANITIZE=ON \
  -DLAMP_FAULT_INJECTION=ON -DLAMP_WERROR=ON -DLAMP_BUILD_BENCH=OFF >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
built=$SECONDS

# new_delete_type_mismatch=0: clFFT deletes its FFTAction objects through a base pointer whose
# size differs (clfftDestroyPlan -> FFTRepo::deletePlan); lamp is C and has no new or delete,
# so the check can only ever find that library's bug. intercept_tls_get_addr=0: with gcc 12's
# LeakSanitizer and Debian 12's glibc, the dynamic TLS ranges it records from __tls_get_addr can
# be garbage (seen: "DTLS 7 at 0x9d2-0x800001ad4" for the main thread once PoCL has loaded its
# kernels), and its tracer then crashes at exit scanning them, in about half the runs of `lamp
# generate` with POCL_CACHE_DIR set; lamp keeps no heap pointers in thread-local storage.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:new_delete_type_mismatch=0"
ASAN_OPTIONS="$ASAN_OPTIONS:intercept_tls_get_addr=0"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LAMP_REQUIRE_MODEL=1 LAMP_REQUIRE_MPI=1

# ctest with these arguments. Should LeakSanitizer's own stop-the-world tracer still crash at a
# process's exit ("Tracer caught signal 11", google/sanitizers#1353), which fails a test without
# any report about the program, then, and only then, the failed tests run once more.
run_ctest() {
  local log="$build_dir/sanitize-ctest.log"
  ctest --test-dir "$build_dir" --output-on-failure --no-tests=error "$@" 2>&1 | tee "$log" &&
    return 0
  grep -q "Tracer caught signal" "$log" || return 1
  echo "sanitize: LeakSanitizer's tracer crashed (not a finding); the failed tests once more"
  ctest --test-dir "$build_dir" --output-on-failure --rerun-failed
}

# two programs at a time, as in test.sh: the suite's time is mostly single-threaded
run_ctest -j "$(nproc)" -E '^(test_mpi|test_mpi_fault)$'
# Open MPI's leaks come from components it has dlclose'd by exit, and Open MPI is built without
# frame pointers: only the slow unwinder reaches the libmpi frames that lsan.supp names.
ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" run_ctest -R '^(test_mpi|test_mpi_fault)$'
echo "sanitize: the suite is clean under ASan, UBSan and LSan (build $((built - start)) s," \
  "tests $((SECONDS - built)) s)"
