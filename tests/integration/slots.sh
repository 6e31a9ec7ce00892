#!/usr/bin/env bash
# Counting semaphores: `--slots N` lets up to N commands hold a lock file at
# once, each in a slot of its own.
. "$(dirname "$0")/lib.sh"

test_one_slot_lets_one_holder_in_at_a_time() {
  at_most_n_hold_at_once lock 1
}

test_three_slots_let_three_holders_in_at_once_and_no_more() {
  at_most_n_hold_at_once lock 3
}

test_sixty_four_slots_let_sixty_four_holders_in_at_once_and_no_more() {
  at_most_n_hold_at_once lock 64
}

test_one_slot_is_the_exclusive_lock_with_fasten_slot_0() {
  hold only exclusive lock --slots 1
  expect_contains "$(status_json lock)" '"state": "exclusive"'
  expect_status 75 "$FASTEN" exclusive -n lock true
  expect_status 75 "$FASTEN" read -n lock true
  release only
  expect_eq 0 "$("$FASTEN" exclusive --slots 1 lock sh -c 'echo $FASTEN_SLOT')"
}

test_the_command_gets_its_slot_and_no_slot_without_slots() {
  hold first exclusive lock --slots 2
  expect_eq "1 write" "$("$FASTEN" write --slots 2 lock sh -c 'echo $FASTEN_SLOT $FASTEN_MODE')"
  release first
  # One inherited from an outer fasten is not this lock's.
  expect_eq unset "$(FASTEN_SLOT=5 "$FASTEN" exclusive lock sh -c 'echo ${FASTEN_SLOT-unset}')"
}

test_a_full_set_of_slots_is_a_conflict_for_nonblock_and_timeout() {
  hold first exclusive lock --slots 2
  hold second exclusive lock --slots 2
  expect_status 75 "$FASTEN" exclusive --slots 2 -n lock true
  expect_status 3 "$FASTEN" exclusive --slots 2 -w 0.2 -E 3 lock true
  release first
  expect_status 0 "$FASTEN" exclusive --slots 2 -n lock true
  release second
}

test_a_plain_write_lock_waits_for_the_slot_holders_and_keeps_new_ones_out() {
  hold first exclusive lock --slots 3
  hold second exclusive lock --slots 3
  "$FASTEN" write lock sh -c 'echo writer >>order' &
  local writer=$!
  wait_for_waiters lock 1
  # A slot is free, but the writer waits: a new slot holder queues behind it.
  expect_status 75 "$FASTEN" exclusive --slots 3 -n lock true
  "$FASTEN" exclusive --slots 3 lock sh -c 'echo slot >>order' &
  local late=$!
  wait_for_waiters lock 2
  release first
  [ ! -e order ] || fail "the writer ran while a slot was held: $(cat order)"
  release second
  wait "$writer" "$late"
  expect_eq "writer slot" "$(tr '\n' ' ' <order | sed 's/ $//')" "the order they ran in"
}

test_slot_holders_wait_while_a_writer_holds_the_lock() {
  hold writer write lock
  "$FASTEN" exclusive --slots 2 lock touch ran &
  local holder=$!
  wait_for_waiters lock 1
  expect_status 75 "$FASTEN" exclusive --slots 2 -n lock true
  [ ! -e ran ] || fail "a slot holder ran while the writer held the lock"
  release writer
  wait "$holder"
  [ -e ran ] || fail "the slot holder did not run"
}

test_readers_share_the_lock_with_slot_holders() {
  hold slot exclusive lock --slots 2
  expect_status 0 "$FASTEN" read -n lock true
  hold reader read lock
  expect_status 0 "$FASTEN" exclusive --slots 2 -n lock true
  expect_contains "$("$FASTEN" status lock)" "1 of 2 slots held and shared by 1"
  release reader
  release slot
}

test_a_killed_holders_slot_goes_at_once_to_a_waiter() {
  hold first exclusive lock --slots 2
  hold second exclusive lock --slots 2
  "$FASTEN" exclusive --slots 2 lock sh -c 'echo "$FASTEN_SLOT" >got' &
  local waiter=$!
  wait_for_waiters lock 1
  # The holder is fasten and its command, which holds the lock with it.
  pkill -KILL -P "$second_pid"
  kill -KILL "$second_pid"
  wait "$waiter"
  expect_eq 1 "$(cat got)" "the slot the waiter got"
  release first
}

test_the_first_waiter_gets_the_first_slot_freed_and_the_next_one_waits() {
  first_waiter_gets_the_first_slot_freed lock
}

# The queue byte held from outside (2^62+2, ARCHITECTURE.md's Protocols),
# as by a waiter at the head: the next slot freed is its, even to a single try.
test_a_single_try_does_not_take_a_free_slot_past_a_waiter_in_the_queue() {
  mkfifo queue.fifo
  # Its directory on its command line, and not on the test's output, for the
  # runner's clean-up after a failure (lib.sh's hold says why).
  python3 -c 'import fcntl, os, sys
os.chdir(sys.argv[1])
fd = os.open("lock", os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX, 1, 2**62 + 2)
open("queue.held", "w").close()
open("queue.fifo").read()' "$PWD" >/dev/null 2>&1 &
  local queued=$!
  wait_for_file queue.held
  expect_status 75 "$FASTEN" exclusive --slots 2 -n lock true
  echo >queue.fifo
  wait "$queued"
  expect_status 0 "$FASTEN" exclusive --slots 2 -n lock true
}

test_a_waiter_that_times_out_at_the_head_lets_the_next_one_in() {
  hold first exclusive lock --slots 2
  hold second exclusive lock --slots 2
  "$FASTEN" exclusive --slots 2 -w 0.5 lock true &
  local impatient=$!
  wait_for_waiters lock 1
  "$FASTEN" exclusive --slots 2 lock touch ran &
  local patient=$!
  expect_status 75 wait "$impatient"
  release first
  wait "$patient"
  [ -e ran ] || fail "the waiter after the one that gave up did not run"
  release second
}

test_holders_that_disagree_on_the_count_share_the_slots_below_each_count() {
  hold first exclusive lock --slots 2
  hold second exclusive lock --slots 2
  expect_status 75 "$FASTEN" exclusive --slots 2 -n lock true
  expect_eq 2 "$("$FASTEN" exclusive --slots 3 -n lock sh -c 'echo $FASTEN_SLOT')"
  hold third exclusive lock --slots 3
  expect_contains "$("$FASTEN" status lock)" "3 of 3 slots held"
  release first
  release second
  release third
}

# Runs a waiter for one of two held slots, through a descriptor (which runs
# no command), under `prlimit LIMIT` as a user id of the test's own that runs
# no other process (the limits bind any user but root); frees the second
# slot and checks that the waiter took it and exited 0.
slot_waiter_as_its_own_user_takes_the_freed_slot() {
  local limit=$1 user=$2
  [ "$(id -u)" -eq 0 ] || skip "needs root, to run fasten as a user of its own"
  locks_belong_to_open_files_here || skip "--fd needs open-file-description locks"
  # A sanitizer's runtime starts threads and queues signals of its own.
  [ "${FASTEN_SANITIZE:-none}" = none ] || skip "the sanitizers' runtime is bound by the limit too"
  command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed"
  hold first exclusive lock --slots 2
  hold second exclusive lock --slots 2
  exec 9<>lock
  prlimit "$limit" setpriv --reuid="$user" --regid="$user" --clear-groups \
    "$FASTEN" exclusive --slots 2 --fd 9 >got 2>err &
  local waiter=$!
  wait_for_waiters lock 1
  release second
  local status=0
  wait "$waiter" || status=$?
  expect_eq 0 "$status" "the waiter's status (stderr: $(cat err))"
  expect_eq 1 "$(cat got)" "the slot the waiter got"
  "$FASTEN" unlock --fd 9
  exec 9>&-
  release first
}

# A wait for any of N slots starts no thread: RLIMIT_NPROC of 1 lets no
# thread (nor command) start.
test_a_slot_wait_starts_no_thread() {
  slot_waiter_as_its_own_user_takes_the_freed_slot --nproc=1 $((200000 + BASHPID))
}

# With one pending signal, which the wait's timer takes, the kernel sends
# SIGIO in place of each close event's signal, which at its default action
# would end fasten ("I/O possible", 157).
test_a_slot_waiter_whose_user_can_queue_no_more_signals_still_gets_its_slot() {
  slot_waiter_as_its_own_user_takes_the_freed_slot --sigpending=1 $((300000 + BASHPID))
}

test_status_says_how_many_slots_are_held_by_whom_and_how_many_wait() {
  hold first exclusive lock --slots 2
  hold second exclusive lock --slots 2
  "$FASTEN" exclusive --slots 2 "$PWD/lock" true >/dev/null 2>&1 &
  local waiter=$!
  wait_for_waiters lock 1
  local text json
  text=$("$FASTEN" status lock || true)
  # Each hold is named by its command, with the holding fasten folded in
  # (with classic locks, the fasten alone holds it).
  expect_contains "$text" "lock: 2 of 2 slots held by pid "
  expect_contains "$text" "pid $first_pid"
  expect_contains "$text" "pid $second_pid"
  expect_contains "$text" ") in slot 0"
  expect_contains "$text" ") in slot 1"
  expect_contains "$text" "; 1 waiting"
  json=$(status_json lock)
  expect_contains "$json" '"slots": 2, "slots_held": 2'
  expect_contains "$json" "{\"pid\": $second_pid, \"command\": "
  expect_contains "$json" '"slot": 1}'
  release first
  wait "$waiter"
  release second
}

test_a_descriptor_takes_a_slot_and_fasten_prints_it() {
  local said
  if ! locks_belong_to_open_files_here; then
    skip "--fd needs open-file-description locks"
  fi
  hold first exclusive lock --slots 2
  exec 9>>lock
  said=$("$FASTEN" exclusive --slots 2 --fd 9 2>&1) && fail "a slot was taken through a descriptor open only for writing"
  expect_contains "$said" "a slot needs the file open for reading and writing (exec 9<>FILE)"
  exec 9<>lock
  expect_eq 1 "$("$FASTEN" exclusive --slots 2 --fd 9)"
  expect_status 75 "$FASTEN" exclusive --slots 2 -n lock true
  "$FASTEN" unlock --fd 9
  expect_status 0 "$FASTEN" exclusive --slots 2 -n lock true
  exec 9>&-
  release first
}

test_verbose_names_the_slot() {
  local said
  said=$("$FASTEN" exclusive -v --slots 4 lock true 2>&1)
  expect_contains "$said" "locked lock (exclusive, slot 0 of 4)"
}

test_a_bad_slot_count_is_a_usage_error_that_names_it() {
  local bad said
  for bad in 0 1025 -1 x 2.5 ""; do
    said=$("$FASTEN" exclusive --slots "$bad" lock true 2>&1) && fail "--slots '$bad' was taken"
    expect_status 64 "$FASTEN" exclusive --slots "$bad" lock true
    expect_contains "$said" "bad slot count: '$bad' (expected a whole number from 1 to 1024)"
  done
  said=$("$FASTEN" read --slots 2 lock true 2>&1) || true
  expect_contains "$said" "--slots applies to exclusive and write"
  expect_status 64 "$FASTEN" read --slots 2 lock true
}

# hold_slot_bytes N: a Python process holds slots 0 … N-1 (one lock on the
# N bytes from 2^62+1024, ARCHITECTURE.md's Protocols) until a line on
# slots.fifo names a slot to free, without closing the file (so that no
# close event or ring tells a waiter), and then until a line on slots.end.
hold_slot_bytes() {
  mkfifo slots.fifo slots.end
  # Its directory on its command line, for the runner's clean-up (lib.sh's
  # hold says why).
  python3 -c 'import fcntl, os, sys
os.chdir(sys.argv[1])
fd = os.open("lock", os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX, int(sys.argv[2]), 2**62 + 1024)
open("slots.held", "w").close()
with open("slots.fifo") as fifo:
    fcntl.lockf(fd, fcntl.LOCK_UN, 1, 2**62 + 1024 + int(fifo.readline()))
with open("slots.end") as fifo:
    fifo.readline()' "$PWD" "$1" >/dev/null 2>&1 &
  slot_bytes_pid=$!
  wait_for_file slots.held
}

# Where the kernel blocks the waiter, and how many threads it takes for that:
# one, blocked on one slot and interrupted by the closes that free the
# others, however many slots there are.
test_a_waiter_for_any_of_1024_slots_has_one_thread() {
  hold_slot_bytes 1024
  "$FASTEN" exclusive --slots 1024 lock touch ran &
  local waiter=$!
  wait_for_waiters lock 1
  local threads
  threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$waiter/status")
  [ "$threads" -eq 1 ] || fail "a waiter for any of 1024 slots has $threads threads"
  echo 0 >slots.fifo
  echo >slots.end
  wait "$slot_bytes_pid"
  wait "$waiter"
  [ -e ran ] || fail "the waiter did not run once the slots were free"
}

# A slot freed where no close event tells (a program that unlocks and keeps
# the file open, or another machine on NFS) is found all the same: the
# waiter tries every slot again now and then (every 0.5 s). The one freed is
# not the one its pid modulo the count names, which a waiter without inotify
# blocks on.
test_a_slot_freed_without_a_close_is_found_by_the_waiter() {
  hold_slot_bytes 2
  "$FASTEN" exclusive --slots 2 lock sh -c 'echo "$FASTEN_SLOT" >got' &
  local waiter=$!
  wait_for_waiters lock 1
  echo $((1 - waiter % 2)) >slots.fifo
  wait "$waiter"
  expect_eq $((1 - waiter % 2)) "$(cat got)" "the slot the waiter got"
  echo >slots.end
  wait "$slot_bytes_pid"
}

locks_belong_to_open_files_here() {
  ! classic_locks
}

test_a_slot_waiter_waits_again_on_a_lock_file_moved_over_or_removed() {
  a_replaced_lock_is_waited_for_again mv write "exclusive --slots 2" write
  rm -f ./*.fifo ./*.held waiter.ran
  a_replaced_lock_is_waited_for_again rm write "exclusive --slots 2" write
}

run_suite
