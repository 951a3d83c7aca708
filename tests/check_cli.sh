#!/bin/sh
# The lamp tool's top level as a user meets it: --version, --help, every command's --help (its
# usage on stdout, exit 0, and nothing run: no device is needed), an unknown command (exit 2).
# Usage: check_cli.sh LAMP VERSION, VERSION being the project's (CMakeLists.txt).
set -u
lamp=$1 version=$2
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
fail=0

# expect STATUS STREAM TEXT ARGS...: `lamp ARGS` exits STATUS and STREAM (out or err) holds TEXT
expect() {
  want=$1 stream=$2 text=$3
  shift 3
  "$lamp" "$@" >"$out" 2>"$err"
  rc=$?
  if [ "$stream" = out ]; then file=$out; else file=$err; fi
  if [ "$rc" -ne "$want" ] || ! grep -qiF -- "$text" "$file"; then
    echo "FAIL: lamp $*: exit $rc (want $want), std$stream lacks '$text'" >&2
    sed 's/^/  stdout: /' "$out" >&2
    sed 's/^/  stderr: /' "$err" >&2
    fail=1
  fi
}

for v in --version -V version; do
  expect 0 out "lamp $version" $v
  [ "$(cat "$out")" = "lamp $version" ] || { echo "FAIL: lamp $v printed '$(cat "$out")'" >&2; fail=1; }
done
for h in --help -h help; do
  expect 0 out "usage: lamp <command>" $h
done
for c in devices smoke tune tune-eval bench version train eval predict generate; do
  expect 0 out usage $c --help
  expect 0 out usage $c -h
  expect 0 out usage help $c
done
expect 2 err "unknown command 'frobnicate'" frobnicate
expect 2 err "usage: lamp <command>" frobnicate
expect 2 err "usage: lamp <command>"
expect 2 err "unknown option" devices --frobnicate
[ $fail -eq 0 ] && echo "check_cli: all passed"
exit $fail
