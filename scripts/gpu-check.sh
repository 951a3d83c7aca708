#!/usr/bin/env bash
# Builds and tests lamp on a machine with an NVIDIA GPU that has no package registry and no
# network, in one call, and writes one report folder.
#
#   scripts/gpu-check.sh --prepare        # HERE, where apt works: fetch the .debs (once)
#   scripts/gpu-check.sh [--out DIR]      # THERE, on the GPU machine
#
# --prepare downloads (apt-get download, no install) the Debian packages that lamp needs to build
# and test on a bare machine into build-gpu/debs/ (ignored by git; about 15 MB, to be carried to
# the GPU machine): the ICD loader and OpenCL headers, CLBlast, clFFT, cmocka, OpenBLAS (the
# benchmarks' baseline) with libgfortran5, pkg-config and make, with a MANIFEST of their sha256.
# No PoCL: the GPU machine's OpenCL driver is NVIDIA's. The compiler (cc), cmake and binutils
# must be on the GPU machine already. The real model (models/*.gguf, ~100 MB) does not travel:
# the tests that need it skip (LAMP_REQUIRE_MODEL is unset); the tiny model is tests/data/tiny.gguf.
#
# The default mode, on the GPU machine: unpacks the carried .debs with dpkg-deb -x into
# build-gpu/prefix (no root; nothing is installed), looks for NVIDIA's OpenCL
# library (libnvidia-opencl.so.1) in the driver's usual folders, ldconfig's cache and, quickly,
# everywhere under /, registers it alone in a private ICD vendors folder (OCL_ICD_VENDORS), then
# configures (build-gpu/build, -DCMAKE_PREFIX_PATH and friends at the prefix; without MPI unless
# an Open MPI mpirun is there), builds (-j$(nproc)), and runs `lamp devices`, `lamp smoke`,
# ctest, the benchmark suite's quick mode, ctest again with LAMP_KERNEL_PROFILE=gpu, and the
# suite's full mode on the tiny model without the PyTorch peer (GEMM shapes, SVDs, prompt
# kernels, training step; capped at 3 minutes). Every step's status, time and log is recorded;
# the script goes on where that makes sense and exits 1 if any step failed. Without NVIDIA's
# library it says where it looked, records the failure, still configures and builds, and skips
# the steps that need a device. The whole run keeps to --budget seconds (default 480): a step
# that would not fit is cut short or skipped, and the report says so.
#
# Report folder (--out DIR; default $OUT when set, else build-gpu/report): report.json (device,
# driver, each step's status and seconds, ctest counts, the bench JSON files), report.md (the
# same as tables, the benchmark tables, the end of each failed step's log), logs.tar.gz (every
# raw log), bench-quick.json, bench-full.json: five files, rewritten after every step.
#
# Options:
#   --prepare          download the .debs (here), then exit
#   --out DIR          report folder
#   --debs DIR         the carried .debs (default build-gpu/debs)
#   --prefix DIR       where they are unpacked (default build-gpu/prefix)
#   --build-dir DIR    build folder (default build-gpu/build; an existing one is reused)
#   --any-device       without NVIDIA's library, go on with the system's ICDs (/etc/OpenCL/vendors,
#                      e.g. PoCL): proves the build, test and bench path on a machine with no GPU
#   --icd-lib FILE     register FILE (an OpenCL ICD library) in the private vendors folder instead
#                      of searching for NVIDIA's
#   --jobs N           build jobs (default nproc)
#   --ctest-jobs N     tests run at once (default nproc/4, 1 to 4)
#   --bench MODE       auto (default: quick and full on a GPU, quick otherwise), quick, full,
#                      both, none
#   --skip LIST        steps to leave out: configure,build,devices,smoke,ctest,bench-quick,
#                      ctest-profile,bench-full
#   --budget S         seconds for the whole run (default 480; 0: no limit)
#   --werror           build with -DLAMP_WERROR=ON
#   --mpi on|off|auto  LAMP_WITH_MPI (auto: on only when mpirun is Open MPI's)
#
# On the device tool: carry build-gpu/debs and run `scripts/gpu-check.sh` (the report lands in
# $OUT). Here, with no GPU: `nice -n 19 scripts/gpu-check.sh --jobs 1 --budget 0` (records the
# missing driver), then `scripts/gpu-check.sh --any-device --budget 0` (PoCL).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
START=$(date +%s)

mode=run
out=${OUT:-}
debs="build-gpu/debs"
prefix="build-gpu/prefix"
build="build-gpu/build"
any_device=0
icd_lib=
jobs=$(nproc)
ctest_jobs=$(( $(nproc) / 4 ))
((ctest_jobs < 1)) && ctest_jobs=1
((ctest_jobs > 4)) && ctest_jobs=4
bench=auto
skip=,
budget=480
werror=OFF
mpi=auto

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || { echo "gpu-check: $1 needs a value" >&2; exit 2; }; }
while (($#)); do
  case $1 in
    --prepare) mode=prepare ;;
    --out) need_arg "$@"; out=$2; shift ;;
    --debs) need_arg "$@"; debs=$2; shift ;;
    --prefix) need_arg "$@"; prefix=$2; shift ;;
    --build-dir) need_arg "$@"; build=$2; shift ;;
    --any-device) any_device=1 ;;
    --icd-lib) need_arg "$@"; icd_lib=$2; shift ;;
    --jobs) need_arg "$@"; jobs=$2; shift ;;
    --ctest-jobs) need_arg "$@"; ctest_jobs=$2; shift ;;
    --bench) need_arg "$@"; bench=$2; shift ;;
    --skip) need_arg "$@"; skip=",$2,"; shift ;;
    --budget) need_arg "$@"; budget=$2; shift ;;
    --werror) werror=ON ;;
    --mpi) need_arg "$@"; mpi=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case $bench in auto|quick|full|both|none) ;; *) echo "gpu-check: --bench auto|quick|full|both|none" >&2; exit 2 ;; esac
case $mpi in auto|on|off) ;; *) echo "gpu-check: --mpi auto|on|off" >&2; exit 2 ;; esac
abspath() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$ROOT" "$1" ;; esac; }
debs=$(abspath "$debs"); prefix=$(abspath "$prefix"); build=$(abspath "$build")

# The packages, with the dependencies a bare machine with a C compiler may lack (apt-cache
# depends); libc6, libgcc-s1 and libstdc++6 come with the compiler.
PACKAGES=(ocl-icd-libopencl1 ocl-icd-opencl-dev opencl-c-headers opencl-clhpp-headers
          opencl-headers libclblast1 libclblast-dev libclfft2 libclfft-dev libcmocka0
          libcmocka-dev libopenblas0 libopenblas0-pthread libopenblas-dev libopenblas-pthread-dev
          libgfortran5 libquadmath0 pkgconf pkgconf-bin libpkgconf3 pkg-config make)
BASE_DEPS=" libc6 libgcc-s1 libstdc++6 gcc-12-base "

# ---------------------------------------------------------------------------------------------
# --prepare
# ---------------------------------------------------------------------------------------------
if [[ $mode == prepare ]]; then
  command -v apt-get >/dev/null || { echo "gpu-check --prepare: needs apt-get" >&2; exit 1; }
  [[ $(dpkg --print-architecture) == amd64 ]] ||
    { echo "gpu-check --prepare: this host is not amd64; the GPU machine is" >&2; exit 1; }
  mkdir -p "$debs"
  rm -f "$debs"/*.deb "$debs/MANIFEST"
  dl() { (cd "$debs" && apt-get -q -o APT::Sandbox::User=root download "${PACKAGES[@]}"); }
  if ! dl >/dev/null 2>&1; then
    echo "gpu-check --prepare: apt-get download failed; running apt-get update once"
    apt-get update -qq || { echo "gpu-check --prepare: apt-get update failed" >&2; exit 1; }
    dl || { echo "gpu-check --prepare: apt-get download failed" >&2; exit 1; }
  fi
  # Dependencies of what was fetched that are neither fetched nor the compiler's own.
  have=" ${PACKAGES[*]} "
  extra=()
  for p in "${PACKAGES[@]}"; do
    while read -r alt; do
      # "A | B" alternatives: one of them fetched (or a base package) is enough
      ok=0
      for d in ${alt//|/ }; do
        [[ $have == *" $d "* || $BASE_DEPS == *" $d "* ]] && ok=1
      done
      ((ok)) || extra+=("$p -> $alt")
    done < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
               --no-replaces --no-enhances "$p" 2>/dev/null |
             awk '/^ *\|?(Pre)?Depends:/ { alt = alt (alt ? "|" : "") $2; if ($1 !~ /^\|/) { print alt; alt = "" } }' |
             tr -d '<>')
  done
  (cd "$debs" && for f in *.deb; do
     printf '%s %s %s %s %s\n' "$f" "$(dpkg-deb -f "$f" Package)" "$(dpkg-deb -f "$f" Version)" \
       "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
   done) >"$debs/MANIFEST"
  n=$(wc -l <"$debs/MANIFEST")
  size=$(du -sb "$debs" | cut -f1)
  tree=$(git ls-files -co --exclude-standard -z | du --files0-from=- -cb 2>/dev/null | tail -1 | cut -f1)
  echo "gpu-check --prepare: $n packages in ${debs#"$ROOT"/}/ ($(numfmt --to=iec "$size")B)"
  echo "  the working tree that travels besides: $(numfmt --to=iec "$tree")B (limit 64 MiB in all)"
  if ((${#extra[@]})); then
    echo "  dependencies not fetched (assumed present on the GPU machine):"
    printf '    %s\n' "${extra[@]}"
  else
    echo "  every dependency is fetched or comes with the compiler (libc6, libgcc-s1, libstdc++6)"
  fi
  git ls-files --error-unmatch tests/data/tiny.gguf >/dev/null 2>&1 &&
    echo "  tests/data/tiny.gguf is committed: it travels with the tree"
  if compgen -G 'models/*.gguf' >/dev/null; then
    echo "  models/*.gguf stays here (ignored, $(du -sh models | cut -f1)): its tests skip there"
  fi
  echo "  on the GPU machine: scripts/gpu-check.sh   (device tool: carry ${debs#"$ROOT"/})"
  (( size < 48 * 1024 * 1024 )) || { echo "gpu-check --prepare: over 48 MiB" >&2; exit 1; }
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# The default mode: steps, each recorded
# ---------------------------------------------------------------------------------------------
[[ -n $out ]] || out="build-gpu/report"
out=$(abspath "$out")
work=$(dirname "$build")/gpu-check-work     # logs and the private ICD folder, beside the build
logs=$work/logs
mkdir -p "$out" "$logs" || exit 2
rm -f "$logs"/* "$out/report.json" "$out/report.md" "$out/logs.tar.gz" "$out"/bench-*.json
# the report's bench files are this run's or none
say() { printf '[gpu-check] %s\n' "$*"; }
os_name() { sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null; }

S_NAME=(); S_STATUS=(); S_SECS=(); S_NOTE=()
ICD_LIB=; ICD_VENDORS=; ICD_MODE=; NV_SEARCHED=; NVSMI=
declare -A CT=()          # ctest results: <run>_total, _passed, _failed, _failed_names, _skipped
mpi_state=unknown

json_str() {
  local s
  s=$(printf '%s' "$1" | LC_ALL=C tr -d '\000-\010\013\014\016-\037')
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/}
  printf '"%s"' "$s"
}
json_num() { [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?$ ]] && printf '%s' "$1" || printf 'null'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# Seconds a step may take: its own cap, within what is left of the budget (15 s kept for the
# report); 0 when less than `min` seconds are left.
step_limit() {
  local cap=$1 min=${2:-10}
  ((budget > 0)) || { echo "$cap"; return; }
  local left=$(( START + budget - $(date +%s) - 15 ))
  ((left < min)) && { echo 0; return; }
  ((left < cap)) && cap=$left
  echo "$cap"
}
skipped() { [[ $skip == *",$1,"* ]]; }
record() {   # name status seconds note
  S_NAME+=("$1"); S_STATUS+=("$2"); S_SECS+=("$3"); S_NOTE+=("$4")
  local line="$1: $2 ($3 s)"
  [[ -n $4 ]] && line+=" - $4"
  say "$line"
  if [[ $2 == failed && -s $logs/$1.log ]]; then
    tail -n 15 "$logs/$1.log" | sed 's/^/    | /'
  fi
  write_report
}
status_of() {
  local i
  for i in "${!S_NAME[@]}"; do [[ ${S_NAME[$i]} == "$1" ]] && { echo "${S_STATUS[$i]}"; return; }; done
  echo none
}
# run_step NAME CAP COMMAND...: runs COMMAND (cwd: the repository) with its output in
# logs/NAME.log, under `timeout` (the whole process group goes at the limit).
# STEP_NOTE, when set, is a note for the step's record (it applies to this step only).
run_step() {
  local name=$1 cap=$2 pre=${STEP_NOTE:-}; shift 2
  STEP_NOTE=
  if skipped "$name"; then record "$name" skipped 0 "--skip"; return 1; fi
  local lim; lim=$(step_limit "$cap")
  if ((lim == 0)); then record "$name" skipped 0 "out of the ${budget} s budget"; return 1; fi
  local t0 rc note=; t0=$(now)
  say "$name: running (limit ${lim} s)"
  timeout -k 10 "$lim" "$@" >"$logs/$name.log" 2>&1
  rc=$?
  local secs; secs=$(elapsed "$t0" "$(now)")
  if ((rc == 0)); then record "$name" ok "$secs" "$pre"; return 0; fi
  if ((rc == 124 || rc == 137)); then note="timed out after ${lim} s"; else note="exit $rc"; fi
  [[ -n $pre ]] && note+="; $pre"
  record "$name" failed "$secs" "$note"
  return 1
}

ctest_parse() {   # run-name log
  local r=$1 log=$2 line
  [[ -s $log ]] || return 0
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
  if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    CT[${r}_failed]=${BASH_REMATCH[1]}; CT[${r}_total]=${BASH_REMATCH[2]}
    CT[${r}_passed]=$(( BASH_REMATCH[2] - BASH_REMATCH[1] ))
  fi
  CT[${r}_failed_names]=$(awk '/The following tests FAILED:/ { f = 1; next }
    f && /^[[:space:]]+[0-9]+ - / { sub(/^[[:space:]]+[0-9]+ - /, ""); print; next } f { f = 0 }' \
    "$log" | tr '\n' ';' | sed 's/;$//')
  # cmocka's summary per program: "[  SKIPPED ] N test(s), listed below:"
  CT[${r}_skipped]=$(grep -oE '\[  SKIPPED \] [0-9]+ test' "$log" | awk '{ s += $(NF-1) } END { print s + 0 }')
  CT[${r}_cases]=$(grep -oE '\[  PASSED  \] [0-9]+ test' "$log" | awk '{ s += $(NF-1) } END { print s + 0 }')
}

device_field() {   # field name in `lamp devices`' block of the selected device
  [[ -s $logs/devices.log ]] || return 0
  awk -v f="$1" '/^\[[0-9]+:[0-9]+\] \(selected\)/ { s = 1; next } /^\[[0-9]+:[0-9]+\]/ { s = 0 }
    s && index($0, "  " f " ") == 1 { sub("^  " f " +", ""); print; exit }' "$logs/devices.log"
}

write_report() {
  local i ok=true failed=() wall; wall=$(( $(date +%s) - START ))
  for i in "${!S_NAME[@]}"; do
    [[ ${S_STATUS[$i]} == failed ]] && { ok=false; failed+=("${S_NAME[$i]}"); }
  done
  local dev_name; dev_name=$(sed -n 's/^\[[0-9]*:[0-9]*\] (selected) //p' "$logs/devices.log" 2>/dev/null | head -1)
  {
    printf '{\n  "script": "scripts/gpu-check.sh",\n  "ok": %s,\n' "$ok"
    printf '  "started": %s,\n  "wall_s": %s,\n' "$(json_str "$(date -u -d "@$START" +%FT%TZ)")" "$wall"
    printf '  "budget_s": %s,\n  "mode": %s,\n' "$budget" "$(json_str "$ICD_MODE")"
    printf '  "git": {"commit": %s, "dirty": %s},\n' \
      "$(json_str "$(git rev-parse HEAD 2>/dev/null)")" \
      "$( [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]] && echo true || echo false)"
    printf '  "host": {"name": %s, "os": %s, "kernel": %s, "cpus": %s, "cc": %s, "cmake": %s},\n' \
      "$(json_str "$(hostname 2>/dev/null)")" \
      "$(json_str "$(os_name)")" \
      "$(json_str "$(uname -r)")" "$(nproc)" \
      "$(json_str "$(cc --version 2>/dev/null | head -1)")" \
      "$(json_str "$(cmake --version 2>/dev/null | head -1)")"
    printf '  "opencl": {"icd_library": %s, "vendors_dir": %s, "searched": %s},\n' \
      "$(json_str "$ICD_LIB")" "$(json_str "$ICD_VENDORS")" "$(json_str "$NV_SEARCHED")"
    printf '  "nvidia_smi": %s,\n' "$(json_str "$NVSMI")"
    printf '  "device": {"name": %s, "platform": %s, "type": %s, "driver_version": %s, "opencl_c": %s, "compute_units": %s, "global_memory": %s},\n' \
      "$(json_str "$dev_name")" "$(json_str "$(device_field platform)")" \
      "$(json_str "$(device_field type)")" "$(json_str "$(device_field 'driver version')")" \
      "$(json_str "$(device_field 'OpenCL C version')")" "$(json_num "$(device_field 'compute units')")" \
      "$(json_str "$(device_field 'global memory')")"
    printf '  "mpi": %s,\n  "steps": [' "$(json_str "$mpi_state")"
    for i in "${!S_NAME[@]}"; do
      ((i)) && printf ','
      printf '\n    {"name": %s, "status": %s, "seconds": %s, "note": %s, "log": %s}' \
        "$(json_str "${S_NAME[$i]}")" "$(json_str "${S_STATUS[$i]}")" "$(json_num "${S_SECS[$i]}")" \
        "$(json_str "${S_NOTE[$i]}")" "$(json_str "logs.tar.gz:${S_NAME[$i]}.log")"
    done
    printf '\n  ],\n'
    local r sep=
    printf '  "ctest": {'
    for r in ctest ctest-profile; do
      printf '%s\n    %s: ' "$sep" "$(json_str "$r")"; sep=,
      if [[ -n ${CT[${r}_total]:-} ]]; then
        printf '{"total": %s, "passed": %s, "failed": %s, "failed_tests": %s, "cmocka_cases_passed": %s, "cmocka_cases_skipped": %s}' \
          "${CT[${r}_total]}" "${CT[${r}_passed]}" "${CT[${r}_failed]}" \
          "$(json_str "${CT[${r}_failed_names]:-}")" "$(json_num "${CT[${r}_cases]:-}")" \
          "$(json_num "${CT[${r}_skipped]:-}")"
      else printf 'null'; fi
    done
    printf '\n  },\n  "bench": {'
    sep=
    for r in quick full; do
      printf '%s"%s": ' "$sep" "$r"; sep=', '
      [[ -s $out/bench-$r.json ]] && json_str "bench-$r.json" || printf 'null'
    done
    printf '},\n  "failed_steps": ['
    sep=
    for r in "${failed[@]}"; do printf '%s%s' "$sep" "$(json_str "$r")"; sep=', '; done
    printf ']\n}\n'
  } >"$out/report.json.tmp" && mv "$out/report.json.tmp" "$out/report.json"

  {
    echo "# lamp GPU check"
    echo
    echo "$(date -u -d "@$START" '+%F %T UTC'), $(hostname 2>/dev/null), commit $(git rev-parse --short HEAD 2>/dev/null), ${wall} s; result: $([[ $ok == true ]] && echo all steps passed || echo "failed: ${failed[*]}")"
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| device | ${dev_name:-none} |"
    echo "| platform, driver | $(device_field platform)${dev_name:+, }$(device_field 'driver version') |"
    echo "| nvidia-smi | ${NVSMI:-not run} |"
    echo "| OpenCL ICD | ${ICD_LIB:-none} (${ICD_MODE}) |"
    echo "| host | $(os_name), $(nproc) CPUs, $(cc --version 2>/dev/null | head -1) |"
    echo "| MPI | $mpi_state |"
    echo
    echo "| step | status | seconds | note |"
    echo "|---|---|---:|---|"
    for i in "${!S_NAME[@]}"; do
      echo "| ${S_NAME[$i]} | ${S_STATUS[$i]} | ${S_SECS[$i]} | ${S_NOTE[$i]//|/\\|} |"
    done
    if [[ -n ${CT[ctest_total]:-} || -n ${CT[ctest-profile_total]:-} ]]; then
      echo
      echo "| ctest run | tests | passed | failed | cmocka cases passed / skipped | failed tests |"
      echo "|---|---:|---:|---:|---:|---|"
      for r in ctest ctest-profile; do
        [[ -n ${CT[${r}_total]:-} ]] || continue
        echo "| $r | ${CT[${r}_total]} | ${CT[${r}_passed]} | ${CT[${r}_failed]} | ${CT[${r}_cases]:-} / ${CT[${r}_skipped]:-} | ${CT[${r}_failed_names]:-} |"
      done
    fi
    for r in quick full; do
      if [[ -s $logs/bench-$r.md ]]; then
        echo; echo "## Benchmark suite, $r mode (bench-$r.json)"; echo
        sed 's/^# /### /; s/^## /### /' "$logs/bench-$r.md"
      fi
    done
    for i in "${!S_NAME[@]}"; do
      [[ ${S_STATUS[$i]} == failed && -s $logs/${S_NAME[$i]}.log ]] || continue
      echo; echo "## ${S_NAME[$i]}: the end of its log"; echo; echo '```'
      tail -n 40 "$logs/${S_NAME[$i]}.log"
      echo '```'
    done
  } >"$out/report.md.tmp" && mv "$out/report.md.tmp" "$out/report.md"
  tar -C "$logs" -czf "$out/logs.tar.gz.tmp" . 2>/dev/null && mv "$out/logs.tar.gz.tmp" "$out/logs.tar.gz"
}

say "lamp GPU check: report in $out"
{
  echo "date: $(date -u +%FT%TZ)"; echo "host: $(hostname 2>/dev/null)"; uname -a
  cat /etc/os-release 2>/dev/null; echo "cpus: $(nproc)"; free -g 2>/dev/null | head -2
  echo "commit: $(git rev-parse HEAD 2>/dev/null)"; git status --short 2>/dev/null | head -20
  echo "args: budget=$budget jobs=$jobs ctest_jobs=$ctest_jobs bench=$bench any_device=$any_device"
  echo "PATH=$PATH"; echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
} >"$logs/env.log" 2>&1
# the tests that need the real model or the project's data skip instead of failing
unset LAMP_REQUIRE_MODEL LAMP_REQUIRE_DATA LAMP_REQUIRE_MPI

# --- 1. unpack the carried packages --------------------------------------------------------
P=$prefix
ARCH=x86_64-linux-gnu
LIBDIR=$P/usr/lib/$ARCH
unpack() {
  set -e
  [[ -s $debs/MANIFEST ]] || { echo "no $debs/MANIFEST: run scripts/gpu-check.sh --prepare where apt works, and carry $debs"; return 1; }
  local f n=0
  rm -rf "$P"; mkdir -p "$P"
  # every package of the manifest, checked against its hash
  while read -r file pkg ver size sum; do
    f=$debs/$file
    [[ -f $f ]] || { echo "missing: $file ($pkg $ver)"; return 1; }
    [[ $(stat -c %s "$f") == "$size" && $(sha256sum "$f" | cut -d' ' -f1) == "$sum" ]] ||
      { echo "corrupt: $f"; return 1; }
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$f" "$P"
    else   # no dpkg: the .deb is an ar archive holding data.tar.*
      local t; t=$(mktemp -d)
      (cd "$t" && ar x "$f" && tar -xf data.tar.* -C "$P")
      rm -rf "$t"
    fi
    echo "unpacked $pkg $ver"; n=$((n + 1))
  done <"$debs/MANIFEST"
  # The packages' CMake and pkg-config files name /usr: point them at the prefix.
  local files
  files=$(find "$P/usr/lib" "$P/usr/share" \( -name '*.cmake' -o -name '*.pc' \) -type f 2>/dev/null)
  # shellcheck disable=SC2086
  sed -i -E "s#(^|[\"'=; ]|-I|-L)/usr([/\"';]|\$)#\\1$P/usr\\2#g" $files
  echo "rewrote /usr to the prefix in: $(echo "$files" | wc -l) CMake and pkg-config files"
  local need=("$P/usr/include/CL/cl.h" "$P/usr/include/clblast_c.h" "$P/usr/include/clFFT.h"
              "$P/usr/include/cmocka.h" "$LIBDIR/libOpenCL.so" "$LIBDIR/libclblast.so"
              "$LIBDIR/libclFFT.so" "$LIBDIR/libcmocka.so" "$LIBDIR/openblas-pthread/libopenblas.so"
              "$LIBDIR/cmake/CLBlast/CLBlastConfig.cmake" "$LIBDIR/cmake/clFFT/clFFTConfig.cmake"
              "$LIBDIR/pkgconfig/cmocka.pc" "$LIBDIR/openblas-pthread/pkgconfig/openblas.pc")
  for f in "${need[@]}"; do [[ -e $f ]] || { echo "missing after unpacking: $f"; return 1; }; done
  echo "$n packages in $P"
}
export -f unpack
export debs P LIBDIR
STEP_NOTE="$(wc -l <"$debs/MANIFEST" 2>/dev/null || echo 0) packages"
run_step unpack 120 bash -c unpack
export PATH="$PATH:$P/usr/bin"     # the carried pkg-config and make, only where none is installed
export LD_LIBRARY_PATH="$LIBDIR:$LIBDIR/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig:$LIBDIR/openblas-pthread/pkgconfig:$P/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

# --- 2. the OpenCL driver: NVIDIA's, in a private ICD vendors folder ------------------------
t0=$(now)
vendors=$work/icd-vendors
rm -rf "$vendors"
nv_dirs=(/usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib
         /usr/lib/nvidia /usr/lib/nvidia-* /usr/lib/x86_64-linux-gnu/nvidia
         /usr/lib/x86_64-linux-gnu/nvidia/current /run/nvidia/driver/usr/lib/x86_64-linux-gnu
         /run/nvidia/driver/usr/lib64 /usr/local/cuda/compat /usr/local/cuda/lib64)
find_nvidia() {   # prints the library's path, or nothing; the log says where it looked
  local d f
  for d in "${nv_dirs[@]}"; do
    [[ -d $d ]] || continue
    echo "looked in $d" >&2
    for f in "$d"/libnvidia-opencl.so.1 "$d"/libnvidia-opencl.so.[0-9]*; do
      [[ -e $f ]] && { echo "$f"; return; }
    done
  done
  if [[ -r /etc/OpenCL/vendors/nvidia.icd ]]; then
    f=$(head -1 /etc/OpenCL/vendors/nvidia.icd)
    echo "/etc/OpenCL/vendors/nvidia.icd names $f" >&2
    [[ $f == /* && -e $f ]] && { echo "$f"; return; }
  fi
  f=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl\.so/ { print $NF; exit }')
  echo "ldconfig -p: ${f:-no libnvidia-opencl}" >&2
  [[ -n $f && -e $f ]] && { echo "$f"; return; }
  echo "searching / (20 s at most)" >&2
  f=$(timeout 20 find / \( -path /proc -o -path /sys -o -path /dev -o -path "$ROOT" \) -prune -o \
        -name 'libnvidia-opencl.so*' \( -type f -o -type l \) -print 2>/dev/null | sort | head -1)
  [[ -n $f ]] && echo "$f"
}
if [[ -n $icd_lib ]]; then
  ICD_MODE=icd-lib
  NV_SEARCHED="--icd-lib"
  ICD_LIB=$icd_lib
  echo "--icd-lib $icd_lib" >"$logs/driver.log"
else
  ICD_MODE=nvidia
  ICD_LIB=$(find_nvidia 2>"$logs/driver.log")
  NV_SEARCHED="${nv_dirs[*]} /etc/OpenCL/vendors/nvidia.icd, ldconfig -p, find /"
fi
if command -v nvidia-smi >/dev/null; then
  NVSMI=$(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -4 | tr '\n' ';' | sed 's/;$//')
  timeout 20 nvidia-smi >>"$logs/driver.log" 2>&1
else
  NVSMI="no nvidia-smi on the PATH"
fi
have_device=0
if [[ -n $ICD_LIB && ! -e $ICD_LIB ]]; then
  echo "no such file: $ICD_LIB" >>"$logs/driver.log"
  record driver failed "$(elapsed "$t0" "$(now)")" "--icd-lib $ICD_LIB: no such file"
  ICD_LIB=
elif [[ -n $ICD_LIB ]]; then
  mkdir -p "$vendors"
  printf '%s\n' "$ICD_LIB" >"$vendors/${ICD_MODE}.icd"
  export OCL_ICD_VENDORS=$vendors
  # the driver's other libraries (libcuda, its compiler) sit beside it
  LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$ICD_LIB")"
  [[ $ICD_MODE == nvidia ]] && export LAMP_DEVICE=${LAMP_DEVICE:-NVIDIA}
  echo "registered $ICD_LIB in $vendors (OCL_ICD_VENDORS)" >>"$logs/driver.log"
  ICD_VENDORS=$vendors
  have_device=1
  record driver ok "$(elapsed "$t0" "$(now)")" "$ICD_LIB"
elif [[ $ICD_MODE == nvidia ]]; then
  msg="no libnvidia-opencl.so.1 found in ${nv_dirs[*]}, /etc/OpenCL/vendors/nvidia.icd, ldconfig -p or under / (is the NVIDIA driver's OpenCL part installed and mounted?)"
  echo "$msg" >>"$logs/driver.log"
  say "$msg"
  if ((any_device)); then
    ICD_MODE=any-device
    ICD_LIB="system ICDs: $(cat /etc/OpenCL/vendors/*.icd 2>/dev/null | tr '\n' ' ')"
    ICD_VENDORS=${OCL_ICD_VENDORS:-/etc/OpenCL/vendors}
    have_device=1
    record driver skipped "$(elapsed "$t0" "$(now)")" "no NVIDIA OpenCL library; --any-device: the system's ICDs"
  else
    record driver failed "$(elapsed "$t0" "$(now)")" "no libnvidia-opencl.so.1 found (driver.log lists where)"
  fi
fi

# --- 3. tools, configure, build --------------------------------------------------------------
t0=$(now)
tools_ok=1
{
  for t in cc cmake pkg-config nm; do
    if command -v "$t" >/dev/null; then echo "$t: $(command -v "$t")"; else echo "$t: MISSING"; tools_ok=0; fi
  done
  cc --version 2>&1 | head -1; cmake --version 2>&1 | head -1; pkg-config --version 2>&1
  if command -v make >/dev/null; then echo "make: $(command -v make)"
  elif command -v ninja >/dev/null; then echo "ninja: $(command -v ninja)"
  else echo "make, ninja: MISSING"; tools_ok=0; fi
  command -v mpirun >/dev/null && { echo "mpirun: $(command -v mpirun)"; timeout 10 mpirun --version 2>&1 | head -2; }
} >"$logs/tools.log" 2>&1
if ((tools_ok)); then
  record tools ok "$(elapsed "$t0" "$(now)")" "$(cc --version 2>/dev/null | head -1); $(cmake --version 2>/dev/null | head -1)"
else
  record tools failed "$(elapsed "$t0" "$(now)")" "missing: $(grep -o '^[a-z, -]*: MISSING' "$logs/tools.log" | sed 's/: MISSING//' | tr '\n' ' ')"
fi

cmake_args=(-S "$ROOT" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLAMP_WERROR="$werror"
  -DCMAKE_PREFIX_PATH="$P/usr" -DCMAKE_LIBRARY_PATH="$LIBDIR" -DCMAKE_INCLUDE_PATH="$P/usr/include"
  -DOpenCL_INCLUDE_DIR="$P/usr/include" -DOpenCL_LIBRARY="$LIBDIR/libOpenCL.so"
  -DCLBlast_DIR="$LIBDIR/cmake/CLBlast" -DclFFT_DIR="$LIBDIR/cmake/clFFT"
  -DCMAKE_POLICY_VERSION_MINIMUM=3.5)
if [[ ! -f $build/CMakeCache.txt ]] && ! command -v make >/dev/null && command -v ninja >/dev/null; then
  cmake_args+=(-G Ninja)
fi
if [[ $mpi == auto ]]; then
  if command -v mpirun >/dev/null && timeout 10 mpirun --version 2>&1 | grep -q 'Open MPI'; then mpi=on; else mpi=off; fi
fi
if [[ $mpi == off ]]; then cmake_args+=(-DLAMP_WITH_MPI=OFF); else cmake_args+=(-DLAMP_WITH_MPI=ON); fi
mpi_state="LAMP_WITH_MPI=${mpi^^}"
built=0
unpacked=$(status_of unpack)
[[ $unpacked == skipped && -e $LIBDIR/libOpenCL.so ]] && unpacked=ok   # --skip unpack: the last one
if [[ $unpacked == ok && $(status_of tools) == ok ]]; then
  if run_step configure 180 cmake "${cmake_args[@]}"; then
    STEP_NOTE="-j$jobs"
    run_step build 420 cmake --build "$build" -j "$jobs" && built=1
  elif skipped configure && [[ -f $build/CMakeCache.txt ]]; then
    STEP_NOTE="-j$jobs"
    run_step build 420 cmake --build "$build" -j "$jobs" && built=1
  else
    record build skipped 0 "configure did not run or failed"
  fi
else
  record configure skipped 0 "unpack or tools failed"
  record build skipped 0 "unpack or tools failed"
fi

# --- 4. on the device -------------------------------------------------------------------------
device_steps=(devices smoke ctest bench-quick ctest-profile bench-full)
if ((!built)) || ((!have_device)); then
  why="no build"; ((have_device)) || why="no OpenCL driver registered (see the driver step; --any-device: the system's)"
  for s in "${device_steps[@]}"; do record "$s" skipped 0 "$why"; done
else
  export LAMP_CACHE_DIR=$work/lamp-cache   # the tools' and benchmarks' cache; ctest sets its own
  if ! run_step devices 60 "$build/lamp" devices; then
    # why the driver did not load: its libraries' unresolved dependencies
    [[ -f ${ICD_LIB%% *} ]] && { echo "--- ldd $ICD_LIB"; ldd "$ICD_LIB"; } >>"$logs/devices.log" 2>&1
    for s in "${device_steps[@]:1}"; do record "$s" skipped 0 "lamp devices failed"; done
  else
    run_step smoke 60 "$build/lamp" smoke
    ctest_cmd=(ctest --test-dir "$build" -V -j "$ctest_jobs")
    STEP_NOTE="-j$ctest_jobs"
    run_step ctest 300 "${ctest_cmd[@]}"
    ctest_parse ctest "$logs/ctest.log"; write_report
    [[ $bench == auto ]] && { if [[ $ICD_MODE == nvidia ]]; then bench=both; else bench=quick; fi; }
    if [[ $bench == quick || $bench == both ]]; then
      run_step bench-quick 120 "$build/lamp" bench --quick --json "$out/bench-quick.json" \
        --md "$logs/bench-quick.md"
    else record bench-quick skipped 0 "--bench $bench"; fi
    STEP_NOTE="LAMP_KERNEL_PROFILE=gpu, -j$ctest_jobs"
    run_step ctest-profile 240 env LAMP_KERNEL_PROFILE=gpu "${ctest_cmd[@]}"
    ctest_parse ctest-profile "$logs/ctest-profile.log"; write_report
    if [[ $bench == full || $bench == both ]]; then
      # the full suite with the tiny model (the real one does not travel), no PyTorch peer
      run_step bench-full 180 "$build/lamp" bench --model tests/data/tiny.gguf --no-peer \
        --json "$out/bench-full.json" --md "$logs/bench-full.md"
    else record bench-full skipped 0 "--bench $bench"; fi
  fi
fi

write_report
failed=()
for i in "${!S_NAME[@]}"; do [[ ${S_STATUS[$i]} == failed ]] && failed+=("${S_NAME[$i]}"); done
say "done in $(( $(date +%s) - START )) s: $out/report.json, report.md, logs.tar.gz"
for r in ctest ctest-profile; do
  [[ -n ${CT[${r}_total]:-} ]] &&
    say "$r: ${CT[${r}_passed]}/${CT[${r}_total]} passed${CT[${r}_failed_names]:+, failed: ${CT[${r}_failed_names]}}"
done
if ((${#failed[@]})); then say "FAILED: ${failed[*]}"; exit 1; fi
say "all steps passed"
