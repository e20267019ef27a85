#!/usr/bin/env bash
# The Python package's pytest suite (tests/python/test_*.py) against the
# real engine, with Debian's python3 and pytest, reported as TAP: one line
# per test, from pytest's own summary.
# SBX_PYTHON_BUILD=build-asan runs it on the sanitized package (pytest-asan.t);
# SBX_PYTEST_DIR=tests/sbxd runs sbxd's suite instead (tests/sbxd/*.t);
# extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${SBX_PYTHON_BUILD:-build}
if [ ! -f "$build/python/sbx/__init__.py" ]; then
  echo "Bail out! $build/python is missing; run make python (or make asan)"
  exit 1
fi
out=$(mktemp /tmp/sbx-pytest.XXXXXX)
trap 'rm -f "$out"' EXIT
PYTHONPATH=$PWD/$build/python /usr/bin/python3 -m pytest "${SBX_PYTEST_DIR:-tests/python}" -rA -p no:cacheprovider \
  -o console_output_style=classic "$@" >"$out" 2>&1
rc=$?
n=0
while read -r status name; do
  n=$((n + 1))
  case $status in
    PASSED) echo "ok $n - $name" ;;
    *) echo "not ok $n - $name ($status)" ;;
  esac
done < <(sed -n 's/^\(PASSED\|FAILED\|ERROR\|SKIPPED\|XFAIL\|XPASS\) \([^ ]*\).*/\1 \2/p' "$out")
# A run that reports no test (pytest's summary not found) is a failure,
# and so is one whose count differs from what pytest says it passed.
passed=$(sed -n 's/^=.* \([0-9][0-9]*\) passed.*/\1/p' "$out" | tail -n1)
if [ "$n" = 0 ] || [ "${passed:-0}" != "$(grep -c '^PASSED ' "$out")" ]; then
  echo "not ok $((n + 1)) - pytest's summary lists every test it ran (found $n, pytest says ${passed:-none} passed)"
  n=$((n + 1))
  rc=${rc/#0/1}
fi
if [ "$rc" != 0 ]; then
  n=$((n + 1))
  echo "not ok $n - pytest exited $rc"
  sed 's/^/# /' "$out" | tail -80
fi
echo "1..$n"
[ "$rc" = 0 ]
