#!/usr/bin/env bash
# Intel's oneAPI OpenCL CPU runtime, a second OpenCL implementation beside PoCL, from PyPI
# (intel-opencl-rt, plus intel-cmplr-lib-rt for libsvml) in a virtual environment: nothing
# system-wide changes. Installs it once, checks that it lists a device, and prints the
# environment that selects it:
#
#   eval "$(./scripts/intel-runtime.sh)"        # then lamp and the tests run on Intel's runtime
#   ./scripts/intel-runtime.sh --dir DIR        # the venv's folder (default build/intel-venv)
#
# LD_LIBRARY_PATH puts the venv's own ICD loader and libraries first and OCL_ICD_FILENAMES names
# the Intel ICD alone, so only that platform is visible; LAMP_DEVICE=intel picks it anyway.
# Exits 3, with the reason on stderr and nothing on stdout, where the runtime cannot work here:
# no python3 venv or pip, no network to PyPI, a CPU without SSE4.2 or not x86-64.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build/intel-venv
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "intel-runtime.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
unavailable() { echo "intel-runtime.sh: Intel's OpenCL runtime is unavailable here: $*" >&2; exit 3; }

[ "$(uname -m)" = x86_64 ] || unavailable "it is built for x86-64, this is $(uname -m)"
grep -qw sse4_2 /proc/cpuinfo || unavailable "the CPU lacks SSE4.2"
lib="$dir/lib/libintelocl.so"
if [ ! -e "$lib" ]; then
  command -v python3 >/dev/null || unavailable "no python3"
  rm -rf "$dir"
  python3 -m venv "$dir" >&2 || unavailable "python3 -m venv failed"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check intel-opencl-rt \
    intel-cmplr-lib-rt >&2 || { rm -rf "$dir"; unavailable "pip install intel-opencl-rt failed"; }
  [ -e "$lib" ] || { rm -rf "$dir"; unavailable "the wheel has no lib/libintelocl.so"; }
fi
abs=$(cd "$dir/lib" && pwd)
env_lines="export LD_LIBRARY_PATH=$abs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export OCL_ICD_FILENAMES=$abs/libintelocl.so
export LAMP_DEVICE=intel"
# The runtime must list its device (it refuses some CPUs at run time).
if [ -x build/lamp ]; then
  out=$(eval "$env_lines"; build/lamp devices 2>&1) ||
    unavailable "lamp devices failed under it: $(printf '%s' "$out" | head -3)"
  printf '%s' "$out" | grep -q "Intel(R) OpenCL" || unavailable "it lists no device: $out"
fi
printf '%s\n' "$env_lines"
