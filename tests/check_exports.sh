#!/bin/sh
# Checks the dynamic symbol table of liblamp.so against the public headers: every exported
# symbol is a public name (lamp_ followed by a lowercase letter; never a lamp__ internal), and
# every function declared LAMP_API is exported. The second half catches a build that hides
# everything (LAMP_BUILDING missing), which the first half alone would pass.
# Usage: check_exports.sh NM LIBRARY INCLUDE_DIR [HEADER_NOT_BUILT...]
set -eu
nm=$1 lib=$2 include=$3
shift 3
headers=$(for h in "$include"/*.h; do
  skip=0
  for s in "$@"; do [ "$(basename "$h")" = "$s" ] && skip=1; done
  [ $skip = 1 ] || printf '%s\n' "$h"
done)

symbols=$("$nm" -D --defined-only "$lib" | awk 'NF == 3 { print $3 }') || {
  echo "check_exports: $nm -D --defined-only $lib failed" >&2
  exit 1
}
if [ -z "$symbols" ]; then
  echo "check_exports: $lib exports no symbol at all" >&2
  exit 1
fi

# lamp__ fails the first pattern; the second lets through the symbols the linker may define
stray=$(printf '%s\n' "$symbols" | grep -Ev '^lamp_[a-z]' |
  grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' || true)
declared=$(sed -n 's/^LAMP_API[^(]*[ *]\(lamp_[a-z0-9_]*\)(.*/\1/p' $headers | sort -u)
missing=$(printf '%s\n' "$declared" | while read -r name; do
  printf '%s\n' "$symbols" | grep -qx "$name" || printf '%s\n' "$name"
done)

fail=0
if [ -n "$stray" ]; then
  printf 'check_exports: %s exports symbols outside the public API:\n' "$lib" >&2
  printf '%s\n' $stray | sed 's/^/  /' >&2
  fail=1
fi
if [ -n "$missing" ]; then
  printf 'check_exports: declared LAMP_API in %s but not exported by %s:\n' "$include" "$lib" >&2
  printf '%s\n' $missing | sed 's/^/  /' >&2
  fail=1
fi
echo "check_exports: $lib exports $(printf '%s\n' "$symbols" | grep -c .) symbols," \
  "$(printf '%s\n' "$declared" | grep -c . || true) declared LAMP_API"
exit $fail
