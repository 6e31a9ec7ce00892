#!/usr/bin/env bash
# Several locks at once (--also MODE LOCK): all held before the command
# starts, none held after a timeout or a signal, taken in one order so that
# two fastens that name them in opposite orders cannot deadlock.
. "$(dirname "$0")/lib.sh"

# in_fasten_order A B: sets LOW and HIGH to the two lock files (made here)
# in the order fasten takes them, by inode on one device.
in_fasten_order() {
  : >"$1"
  : >"$2"
  if [ "$(stat -c %i "$1")" -lt "$(stat -c %i "$2")" ]; then
    LOW=$1 HIGH=$2
  else
    LOW=$2 HIGH=$1
  fi
}

test_the_command_runs_with_every_lock_held_each_in_its_mode() {
  hold both write target --also read db
  expect_status 75 "$FASTEN" exclusive -n target true
  expect_status 75 "$FASTEN" exclusive -n db true
  # db is held for read: another reader gets in beside it.
  expect_status 0 "$FASTEN" read -n db true
  expect_contains "$(status_json target)" '"state": "exclusive"'
  expect_contains "$(status_json db)" '"state": "shared"'
  release both
  expect_status 0 "$FASTEN" exclusive -n --also exclusive db target true
}

test_a_conflict_on_the_second_lock_names_it_and_the_first_is_let_go() {
  in_fasten_order a b
  hold other exclusive "$HIGH"
  local status=0
  "$FASTEN" exclusive -n -v --also exclusive "$HIGH" "$LOW" touch ran 2>err || status=$?
  expect_eq 75 "$status" "exit status"
  [ ! -e ran ] || fail "the command ran without every lock"
  expect_contains "$(cat err)" "fasten: $HIGH (exclusive) was not free in time (lock 2 of 2 in fasten's order)"
  expect_contains "$(cat err)" "fasten: unlocked $LOW (exclusive)"
  expect_status 0 "$FASTEN" exclusive -n "$LOW" true
  # -E applies to the set as to one lock.
  expect_status 3 "$FASTEN" read -n -E 3 --also read "$LOW" "$HIGH" true
  release other
}

test_a_timeout_on_the_set_lets_go_of_the_locks_taken_while_it_waited() {
  in_fasten_order a b
  hold other exclusive "$HIGH"
  "$FASTEN" write -w 30 --also write "$HIGH" "$LOW" touch ran 2>err &
  local waiter=$!
  wait_for_waiters "$HIGH" 1
  # It waits for the second lock holding the first.
  expect_status 75 "$FASTEN" read -n "$LOW" true
  release other
  wait "$waiter"
  [ -e ran ] || fail "the command did not run once both were free"
  # A holder of another name: hold waits for NAME.held, which the first left.
  hold again exclusive "$HIGH"
  local status=0
  "$FASTEN" write -w 0.3 --also write "$HIGH" "$LOW" touch ran2 2>err || status=$?
  expect_eq 75 "$status" "exit status after -w 0.3"
  [ ! -e ran2 ] || fail "the command ran without every lock"
  expect_contains "$(cat err)" "$HIGH (write) was not free in time"
  expect_status 0 "$FASTEN" exclusive -n "$LOW" true
  release again
}

test_a_signal_while_it_waits_for_the_second_lets_go_of_the_first() {
  in_fasten_order a b
  hold other exclusive "$HIGH"
  "$FASTEN" exclusive --also exclusive "$HIGH" "$LOW" touch ran &
  local waiter=$! status=0
  wait_for_waiters "$HIGH" 1
  expect_status 75 "$FASTEN" exclusive -n "$LOW" true
  kill -TERM "$waiter"
  wait "$waiter" || status=$?
  expect_eq 143 "$status" "exit status after SIGTERM"
  expect_status 0 "$FASTEN" exclusive -n "$LOW" true
  release other
  [ ! -e ran ] || fail "the command ran after the signal"
}

# rounds LOCK... : ROUNDS fastens one after the other, each holding every
# LOCK (the first as LOCK, the rest with --also) while its command logs its
# start and end. A failure or a timeout of any round is logged too.
rounds() {
  local first=$1 also=() lock i
  shift
  for lock in "$@"; do
    also+=(--also exclusive "$lock")
  done
  for i in $(seq "$ROUNDS"); do
    "$FASTEN" exclusive -w 600 "${also[@]}" "$first" sh -c 'echo "start $1" >>log; echo "end $1" >>log' sh \
      "$first$i" || echo "failed $first$i $?" >>log
  done
}

test_two_loops_that_cross_never_deadlock_nor_run_together() {
  # 1,000 rounds each; 50 under the sanitizers, where each fasten takes
  # about a third of a CPU second to start.
  ROUNDS=1000
  [ "${FASTEN_SANITIZE:-none}" = none ] || ROUNDS=50
  rounds A B &
  local one=$!
  rounds B A &
  local two=$!
  wait "$one"
  wait "$two"
  expect_eq "" "$(grep failed log)" "rounds that failed or timed out"
  # Every round shares a lock with every other: each start is followed by its own end.
  local verdict
  verdict=$(awk '
    $1 == "start" { if (inside != "") { bad = bad " " $2 " started inside " inside ";" } inside = $2; n++ }
    $1 == "end" { if (inside != $2) { bad = bad " " $2 " ended outside;" } inside = "" }
    END { printf "%d rounds;%s", n, bad }' log)
  expect_eq "$((ROUNDS * 2)) rounds;" "$verdict" "the log of both loops"
}

test_a_lock_named_twice_is_a_usage_error() {
  local err
  err=$("$FASTEN" write --also read db db true 2>&1 >/dev/null) && fail "a lock named twice was taken"
  expect_eq "fasten: the lock 'db' is named twice, for write and for read: a lock is held in one mode; name it once, for write if the command writes" "$err"
  expect_status 64 "$FASTEN" write --also write db db true
  : >file
  ln -s file link
  err=$("$FASTEN" exclusive --also exclusive link file touch ran 2>&1 >/dev/null) && fail "one file by two names was taken"
  expect_eq "fasten: the lock 'file' is named twice (also as 'link'): name each lock once" "$err"
  expect_status 64 "$FASTEN" exclusive --also exclusive link file touch ran
  [ ! -e ran ] || fail "the command ran"
}

test_also_refuses_slots_no_fork_descriptors_and_bad_modes() {
  expect_status 64 "$FASTEN" exclusive --slots 2 --also read db lock true
  expect_status 64 "$FASTEN" exclusive -F --also read db lock true
  expect_status 64 "$FASTEN" exclusive --also shared db lock true
  expect_status 64 "$FASTEN" exclusive --also read lock true
  expect_contains "$("$FASTEN" exclusive --slots 2 --also read db lock true 2>&1)" \
    "--slots and --also cannot go together"
  expect_contains "$("$FASTEN" exclusive --also shared db lock true 2>&1)" "bad mode in --also: 'shared'"
}

test_the_command_learns_every_lock_from_fasten_locks() {
  local got
  got=$(FASTEN_LOCKS=stale "$FASTEN" write --also read 'd b' --also=exclusive jobs target \
    sh -c 'echo "$FASTEN_LOCK $FASTEN_MODE"; echo "$FASTEN_LOCKS"')
  expect_eq "target write
write - target
read - d b
exclusive - jobs" "$got"
  got=$(FASTEN_LOCKS=stale "$FASTEN" read one sh -c 'echo "$FASTEN_LOCKS"')
  expect_eq "read - one" "$got" "FASTEN_LOCKS of one lock"
  got=$("$FASTEN" write --also read 'd b' target sh -c \
    'echo "$FASTEN_LOCKS" | while read -r mode token lock; do echo "[$mode] [$token] [$lock]"; done')
  expect_eq "[write] [-] [target]
[read] [-] [d b]" "$got" "FASTEN_LOCKS read line by line"
}

test_status_shows_a_holder_of_several_under_each_lock() {
  hold both write target --also read db
  local pid
  pid=$(eval echo "\$both_pid")
  expect_contains "$(status_json target)" "\"pid\": $pid"
  expect_contains "$(status_json db)" "\"pid\": $pid"
  expect_contains "$("$FASTEN" status db)" "held by pid $pid ("
  release both
  expect_contains "$(status_json db)" '"state": "free"'
}

run_suite
