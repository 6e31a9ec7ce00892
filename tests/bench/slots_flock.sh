#!/bin/bash
# slots_flock.sh DIR N COMMAND...: runs COMMAND in one of N slots, the common
# hand-rolled counting semaphore over flock(1): try DIR/slot-0 … DIR/slot-N-1
# with `flock -n`, and if every one is busy, block on one picked at random.
# scripts/bench measures `fasten exclusive --slots N` against it. Its
# weakness is the last line: it may sleep on a busy slot while another is free.
dir=$1 slots=$2
shift 2
for ((i = 0; i < slots; i++)); do
  # -E 75 tells "slot busy" from COMMAND's own status 1.
  flock -n -E 75 "$dir/slot-$i" "$@"
  status=$?
  [ "$status" -eq 75 ] || exit "$status"
done
exec flock "$dir/slot-$((RANDOM % slots))" "$@"
