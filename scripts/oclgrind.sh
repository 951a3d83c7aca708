#!/usr/bin/env bash
# Runs every test program that launches lamp's own kernels under Oclgrind, a simulator that
# checks each kernel against the OpenCL specification, with data-race detection and the limits
# of a small GPU (256 work-items, 32 KiB of local memory). Any report fails the run: zero is
# the bar. The programs see LAMP_TEST_SIMULATOR=1 and run their small cases there (the full
# sizes run on PoCL and Intel's runtime).
#
#   ./scripts/oclgrind.sh                     every program with the GPU profile (Oclgrind's
#                                             own, as it is a GPU), then the programs whose
#                                             kernels differ by profile with the CPU profile
#   ./scripts/oclgrind.sh --profile cpu       every program with one profile
#   BUILD_DIR=build ./scripts/oclgrind.sh     the build to test (default build)
#
# Reports and test output go to $BUILD_DIR/oclgrind/<profile>-<test>.log. Last, `lamp smoke`
# on a simulated device of 32 work-items per group must be refused with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
profiles=(gpu cpu)
only_profile=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) only_profile=$2; profiles=("$2"); shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "oclgrind.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v oclgrind >/dev/null || { echo "oclgrind.sh: oclgrind not found (Debian package oclgrind)" >&2; exit 1; }

tests=(test_tensor test_pool test_optim test_llama_ops test_prompt test_prompt_init
       test_svd_kernels test_svd test_model test_dequant)
out="$build_dir/oclgrind"
mkdir -p "$out"
fail=0 total=0
# attention (test_llama_ops), the compressed outer product (test_prompt) and the product on
# stored weights (test_dequant) have a shape per profile; every other kernel is the same in both. test_model_cache runs with the CPU profile
# only: its kernels are the same under both but for the products of a few rows, which are
# lamp's own kernel on the CPU profile and CLBlast's GEMV on the GPU one.
by_profile=(test_llama_ops test_prompt test_dequant test_model_cache)
for prof in "${profiles[@]}"; do
  run=("${tests[@]}")
  [ -z "$only_profile" ] && [ "$prof" = cpu ] && run=("${by_profile[@]}")
  for t in "${run[@]}"; do
    log="$out/$prof-$t.log" reports="$out/$prof-$t.reports"
    start=$(date +%s)
    rc=0
    # a program cache of its own: binaries from another implementation are not Oclgrind's
    LAMP_TEST_SIMULATOR=1 LAMP_KERNEL_PROFILE=$prof LAMP_CACHE_DIR="$out/cache" \
      oclgrind --data-races --max-wgsize 256 --local-mem-size 32768 \
      --global-mem-size 1073741824 --log "$reports" "$build_dir/tests/$t" >"$log" 2>&1 || rc=$?
    n=0
    [ -s "$reports" ] && n=$(grep -cE "^(Read-write|Write-write|Invalid|Uninitialized|Work-group divergence|Work-item|OCLGRIND|.*error)" "$reports" || true)
    [ -s "$reports" ] && [ "$n" = 0 ] && n=1 # anything in the log counts
    total=$((total + n))
    status=ok
    if [ $rc != 0 ] || [ "$n" != 0 ]; then status=FAILED; fail=1; fi
    printf 'oclgrind: %-4s %-18s %4ss  exit %d  reports %d  %s\n' "$prof" "$t" \
      $(( $(date +%s) - start )) "$rc" "$n" "$status"
    if [ $status = FAILED ]; then
      head -40 "$reports" 2>/dev/null || true
      tail -20 "$log"
    fi
  done
done
# A device allowing fewer than 64 work-items per group (CLBlast's kernels and clFFT's plans
# need 64; clFFT asserts it, aborting the process) is refused with its reason, not run.
small="$out/small-device.log"
rc=0
LAMP_CACHE_DIR="$out/cache" oclgrind --max-wgsize 32 "$build_dir/lamp" smoke >"$small" 2>&1 || rc=$?
if [ $rc = 1 ] && grep -q "allows 32 work-items per group; lamp, CLBlast and clFFT need at least 64" "$small"; then
  echo "oclgrind: a device of 32 work-items per group is refused with its reason: ok"
else
  echo "oclgrind: a device of 32 work-items per group: exit $rc, not the refusal; FAILED"
  cat "$small"
  fail=1
fi
echo "oclgrind: $total report(s) in all"
exit $fail
