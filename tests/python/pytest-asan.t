#!/usr/bin/env bash
# The pytest suite on build-asan/python: the extension and libsbx under ASan
# and UBSan (Python itself is not sanitized: the runtimes are preloaded, and
# leaks are not checked, since the interpreter keeps memory until exit). The
# seed examples run in child interpreters of the normal build: left out here.
cd "$(dirname "$0")/../.." || exit 1
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:disable_coredump=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  SBX_PYTHON_BUILD=build-asan exec tests/python/pytest.t --deselect tests/python/test_seed_docs.py
