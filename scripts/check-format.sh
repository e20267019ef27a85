#!/bin/bash
# Checks that every C file is as clang-format (.clang-format) lays it out;
# `scripts/check-format.sh --fix` rewrites them. Prints TAP: one line per
# file, so that prove reports the files that drifted.
set -uo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src include tests bench examples fuzz -name '*.[ch]')
if [ "${1:-}" = --fix ]; then
  clang-format -i $files
  exit 0
fi
n=0 failed=0
for f in $files; do
  n=$((n + 1))
  if clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "ok $n - $f is formatted"
  else
    echo "not ok $n - $f is formatted (scripts/check-format.sh --fix)"
    failed=$((failed + 1))
  fi
done
echo "1..$n"
[ "$failed" = 0 ]
