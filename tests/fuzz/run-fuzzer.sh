#!/usr/bin/env bash
# run-fuzzer.sh FUZZER NAME [RUNS]: runs the libFuzzer target FUZZER for RUNS
# inputs (FUZZ_RUNS, or the count below; at most FUZZ_SECONDS, 15 s) from its
# seeds, $FUZZ_CORPORA/NAME, with $FUZZ_CORPORA/NAME.dict where there is one.
# New inputs go to a scratch directory, not into the seeds; a crashing input
# is kept there and named. Prints the executions per second and the edges
# covered. Fails on a crash, a leak, an uncaught exception or a slow input.
set -euo pipefail
fuzzer=$1 name=$2
runs=${3:-${FUZZ_RUNS:-}}
seeds=$FUZZ_CORPORA/$name
if [ -z "$runs" ]; then
  # About 8 s each on two idle cores under ASan+UBSan (at most 15 s on busy
  # ones, then cut short by FUZZ_SECONDS).
  case $name in
  fuzz-command-line) runs=2000 ;; # CLI11 builds its parser at every run
  fuzz-escape | fuzz-etcd-answer) runs=40000 ;;
  fuzz-proc-locks) runs=80000 ;;
  *) runs=150000 ;;
  esac
fi
scratch=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
options=(-runs="$runs" -max_total_time="${FUZZ_SECONDS:-15}" -timeout=10 -rss_limit_mb=2048
  -max_len=4096 -print_final_stats=1 -artifact_prefix="$scratch/")
[ ! -f "$seeds.dict" ] || options+=(-dict="$seeds.dict")
log=$scratch/log
status=0
"$fuzzer" "${options[@]}" "$scratch" "$seeds" >"$log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  cat "$log"
  echo "$name: failed (status $status); inputs kept in $scratch" >&2
  exit 1
fi
# libFuzzer's final statistics, and the edges of its last status line.
runs_done=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log")
seconds=$(awk '/^Done [0-9]+ runs in/ { print $5 }' "$log")
per_second=$(awk -v r="${runs_done:-0}" -v s="${seconds:-0}" 'BEGIN { if (s > 0) print int(r / s); else print "over " r }')
edges=$(grep -oE 'cov: [0-9]+' "$log" | tail -n1 | awk '{ print $2 }')
features=$(grep -oE 'ft: [0-9]+' "$log" | tail -n1 | awk '{ print $2 }')
echo "$name: $runs_done runs in ${seconds:-?} s, $per_second exec/s, ${edges:-?} edges, ${features:-?} features"
rm -rf "$scratch"
