#!/bin/sh
# Runs one libFuzzer target of build-fuzz/ for a while; used by `make fuzz`.
#
#   fuzz/run.sh NAME SECONDS MAX_LEN
#
# The seed corpus fuzz/corpus/NAME is copied to build-fuzz/run/NAME/corpus,
# which keeps what the runs find (the checked-in corpus is left as it is).
# Prints one closing line; on a crash, a leak or a timeout, the end of the
# log and where the input that did it was saved, and exits 1.
set -eu
name=$1 seconds=$2 max_len=$3
work=build-fuzz/run/$name
mkdir -p "$work/corpus" build-fuzz/crashes
cp fuzz/corpus/"$name"/* "$work/corpus/"
set -- -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -print_final_stats=1 \
  -artifact_prefix=build-fuzz/crashes/"$name"-
[ -f fuzz/"$name".dict ] && set -- "$@" -dict=fuzz/"$name".dict
if build-fuzz/fuzz_"$name" "$@" "$work/corpus" >"$work/log" 2>&1; then
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
  printf 'fuzz_%s: %s runs in %s s, no crash (corpus: %s inputs)\n' "$name" "${runs:-?}" \
    "$seconds" "$(ls "$work/corpus" | wc -l)"
else
  tail -n 40 "$work/log" >&2
  printf 'fuzz_%s: FAILED (log: %s/log; input: %s)\n' "$name" "$work" \
    "$(sed -n 's/.*Test unit written to //p' "$work/log" | tail -n 1)" >&2
  exit 1
fi
