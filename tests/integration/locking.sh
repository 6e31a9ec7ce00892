#!/usr/bin/env bash
# Locks between processes: who excludes whom, waiting and waking, timeouts,
# crashes, and the lock file itself.
. "$(dirname "$0")/lib.sh"

test_exclusive_and_write_exclude_each_other_and_readers() {
  hold holder exclusive lock
  expect_status 75 "$FASTEN" exclusive -n lock true
  expect_status 75 "$FASTEN" write -n lock true
  expect_status 75 "$FASTEN" read -n lock true
  release holder
  hold writer write lock
  expect_status 75 "$FASTEN" exclusive -n lock true
  expect_status 75 "$FASTEN" read -n lock true
  release writer
  expect_status 0 "$FASTEN" exclusive -n lock true
}

test_readers_overlap_and_writers_wait() {
  # Each reader waits, holding its lock, until it sees the other: both can
  # finish only if they hold the lock at the same time.
  "$FASTEN" read -w 10 lock sh -c 'touch a; i=0; while [ ! -e b ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; [ -e b ]' &
  local a=$!
  "$FASTEN" read -w 10 lock sh -c 'touch b; i=0; while [ ! -e a ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; [ -e a ]' &
  local b=$!
  wait "$a" || fail "the first reader did not see the second"
  wait "$b" || fail "the second reader did not see the first"

  hold reader read lock
  expect_status 75 "$FASTEN" write -w 0.2 lock true
  "$FASTEN" write lock sh -c 'echo writer >> order' &
  local writer=$!
  wait_for_waiters lock 1
  echo reader-done >>order
  release reader
  wait "$writer"
  expect_eq "reader-done writer" "$(tr '\n' ' ' <order | sed 's/ $//')" "order"
}

test_a_release_wakes_a_waiter_at_once() {
  hold holder exclusive lock
  "$FASTEN" exclusive lock sh -c 'date +%s%N > woke' &
  local waiter=$!
  wait_for_waiters lock 1
  local released
  released=$(date +%s%N)
  release holder
  wait "$waiter"
  local delay_ms=$((($(cat woke) - released) / 1000000))
  echo "# hand-off took ${delay_ms} ms" >&2
  [ "$delay_ms" -lt 500 ] || fail "the waiter took ${delay_ms} ms to get the lock"
}

test_a_timeout_ends_the_wait_after_about_that_long() {
  hold holder exclusive lock
  local start end
  start=$(now_ms)
  expect_status 75 "$FASTEN" exclusive -w 0.3 lock true
  end=$(now_ms)
  echo "# -w 0.3 gave up after $((end - start)) ms" >&2
  [ $((end - start)) -ge 290 ] || fail "gave up after $((end - start)) ms, before the timeout"
  [ $((end - start)) -lt 1500 ] || fail "gave up after $((end - start)) ms"
  release holder
}

test_the_timeout_holds_whatever_signal_mask_fasten_inherited() {
  hold holder exclusive lock
  local start end
  start=$(now_ms)
  # trap '' ignores them; a blocked mask is what many job runners hand down.
  expect_status 75 bash -c 'trap "" ALRM RTMIN+3; exec "$0" exclusive -w 0.3 lock true' "$FASTEN"
  expect_status 75 python3 -c '
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, set(range(1, signal.NSIG)) - {signal.SIGKILL, signal.SIGSTOP})
os.execv(sys.argv[1], [sys.argv[1], "exclusive", "-w", "0.3", "lock", "true"])' "$FASTEN"
  end=$(now_ms)
  # Generous: it also counts bash's and python's start on a loaded machine;
  # a timeout that did not hold would wait for the holder, which stays.
  [ $((end - start)) -lt 30000 ] || fail "two 0.3 s timeouts took $((end - start)) ms"
  release holder
}

test_a_holder_killed_with_sigkill_frees_the_lock_for_a_waiter_at_once() {
  # With -o the command does not share the lock, and dies with fasten.
  hold holder exclusive lock -o
  "$FASTEN" exclusive -w 10 lock sh -c 'date +%s%N > woke' &
  local waiter=$!
  wait_for_waiters lock 1
  local killed
  killed=$(date +%s%N)
  kill -KILL "$holder_pid"
  wait "$waiter"
  local delay_ms=$((($(cat woke) - killed) / 1000000))
  [ "$delay_ms" -lt 1000 ] || fail "the waiter took ${delay_ms} ms after the kill"
}

test_a_command_keeps_the_lock_when_fasten_is_killed_or_dies_with_it() {
  hold holder exclusive lock
  kill -KILL "$holder_pid"
  wait "$holder_pid" 2>/dev/null || true
  if classic_locks; then
    # The lock was fasten's alone, so the command must have died with it.
    local i=0
    while pgrep -f "$PWD/holder" >/dev/null; do
      i=$((i + 1))
      [ $i -lt 300 ] || fail "the command went on running without the lock"
      sleep 0.01
    done
    expect_status 0 "$FASTEN" exclusive -n lock true
    return
  fi
  # The command still runs, and still holds the lock through its descriptor.
  expect_status 75 "$FASTEN" exclusive -n lock true
  echo >holder.fifo
  local i=0
  until "$FASTEN" exclusive -n lock true; do
    i=$((i + 1))
    [ $i -lt 500 ] || fail "the lock was not freed when the command ended"
    sleep 0.01
  done
}

test_five_concurrent_loops_of_forty_increments_end_at_200() {
  echo 0 >counter
  local pids=() i
  for i in 1 2 3 4 5; do
    (
      for _ in $(seq 40); do
        "$FASTEN" exclusive lock sh -c 'n=$(cat counter); echo $((n + 1)) > counter' || exit 1
      done
    ) &
    pids+=($!)
  done
  for i in "${pids[@]}"; do
    wait "$i" || fail "a loop failed"
  done
  expect_eq 200 "$(cat counter)" "counter"
}

test_the_lock_file_is_never_written_truncated_or_removed() {
  printf 'keep\0these bytes\n' >data
  touch -d '2001-02-03 04:05:06' data
  local before
  before=$(stat -c '%s %Y %i' data)
  "$FASTEN" exclusive data true
  "$FASTEN" read data true
  "$FASTEN" write -c 'true' data
  expect_eq "$before" "$(stat -c '%s %Y %i' data)" "size, mtime, inode"
  expect_eq "6b656570007468657365206279746573" "$(head -c 16 data | od -An -tx1 | tr -d ' \n')" "bytes"
}

test_a_missing_lock_file_is_created_with_the_umask_or_the_given_mode() {
  (umask 027; "$FASTEN" exclusive created true)
  expect_eq 640 "$(stat -c %a created)" "mode with umask 027"
  expect_eq 0 "$(stat -c %s created)" "size"
  (umask 077; "$FASTEN" exclusive --mode 0664 exact true)
  expect_eq 664 "$(stat -c %a exact)" "--mode 0664"
  touch existing
  chmod 600 existing
  "$FASTEN" exclusive --mode 0666 existing true
  expect_eq 600 "$(stat -c %a existing)" "--mode leaves an existing file alone"
}

test_a_fifo_as_lock_file_neither_hangs_nor_ignores_the_timeout() {
  mkfifo fifo
  expect_status 0 timeout 5 "$FASTEN" exclusive -w 1 fifo true
  hold holder exclusive fifo
  expect_status 75 timeout 5 "$FASTEN" exclusive -w 0.2 fifo true
  release holder
}

test_lock_files_given_by_relative_and_absolute_paths_are_one_lock() {
  hold holder exclusive lock
  expect_status 75 "$FASTEN" exclusive -n "$PWD/lock" true
  expect_status 75 "$FASTEN" exclusive -n ./lock true
  release holder
}

test_a_dangling_symlink_as_lock_file_is_refused_at_once_and_its_target_not_created() {
  # Before the fix, open followed the link (ENOENT), O_CREAT|O_EXCL met the
  # link (EEXIST), and the two repeated for ever at 100 % CPU.
  ln -s target link
  ln -s missing-dir/target link2
  local err status mode
  for mode in exclusive read write; do
    status=0
    timeout 5 "$FASTEN" "$mode" -n link true 2>err || status=$?
    expect_eq 66 "$status" "status of $mode -n on a dangling link"
    err=$(cat err)
    expect_contains "$err" "dangling symbolic link"
    expect_contains "$err" "target"
    expect_eq 1 "$(printf '%s\n' "$err" | wc -l)" "lines on stderr"
  done
  status=0
  timeout 5 "$FASTEN" read -w 1 link2 true 2>err || status=$?
  expect_eq 66 "$status" "status of read -w 1 on a link into a missing directory"
  expect_contains "$(cat err)" "missing-dir/target"
  expect_status 66 timeout 5 "$FASTEN" exclusive link true
  expect_status 66 timeout 5 "$FASTEN" exclusive --no-create link true
  [ ! -e target ] || fail "the link's target was created"
  [ ! -e missing-dir ] || fail "the link's directory was created"
}

test_an_exclusive_lock_on_a_file_one_may_read_but_not_write_says_why() {
  command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed"
  # flock(1)'s `flock -n "$0"` idiom: a script locks itself, which others may
  # read but not write. An fcntl write lock needs the file open for writing.
  chmod 755 .
  touch script.sh
  chmod 644 script.sh
  local as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  expect_status 66 "${as_nobody[@]}" "$FASTEN" exclusive -n script.sh true 2>err
  expect_contains "$(cat err)" "script.sh"
  expect_contains "$(cat err)" "needs the file open for writing"
  expect_contains "$(cat err)" "read lock"
  expect_eq 1 "$(wc -l <err)" "lines on stderr"
  expect_status 0 "${as_nobody[@]}" "$FASTEN" read -n script.sh true
}

test_an_exclusive_waiter_waits_again_on_a_lock_file_moved_over_or_removed() {
  a_replaced_lock_is_waited_for_again mv exclusive exclusive exclusive
  rm -f ./*.fifo ./*.held waiter.ran
  a_replaced_lock_is_waited_for_again rm exclusive exclusive exclusive
}

test_a_write_waiter_waits_again_on_a_lock_file_moved_over_or_removed() {
  a_replaced_lock_is_waited_for_again mv write write write
  rm -f ./*.fifo ./*.held waiter.ran
  a_replaced_lock_is_waited_for_again rm write write write
}

test_a_read_waiter_waits_again_on_a_lock_file_moved_over_or_removed() {
  a_replaced_lock_is_waited_for_again mv write read write
  rm -f ./*.fifo ./*.held waiter.ran
  a_replaced_lock_is_waited_for_again rm write read write
}

test_a_waiter_that_waits_again_on_a_replaced_lock_file_keeps_its_timeout_from_the_start() {
  hold first exclusive lock
  local start waiter status=0 took
  start=$(now_ms)
  "$FASTEN" exclusive -v -w 10 lock true 2>waiter.err &
  waiter=$!
  wait_for_waiters lock 1
  : >new && mv new lock
  hold second exclusive lock
  # The old file's lock comes 8 s into the 10 s timeout: 2 s are left for
  # the new file, not 10 s more. The window between 10 s and 18 s is wide
  # enough for a loaded machine.
  while [ $(($(now_ms) - start)) -lt 8000 ]; do sleep 0.05; done
  release first
  wait "$waiter" || status=$?
  took=$(($(now_ms) - start))
  echo "# -w 10 gave up after $took ms" >&2
  expect_eq 75 "$status" "status of the waiter"
  expect_contains "$(cat waiter.err)" "waiting again"
  [ "$took" -lt 14000 ] || fail "the waiter gave up after $took ms: its timeout started again"
  release second
}


test_a_file_on_proc_or_a_socket_is_refused_as_a_lock_file_with_65() {
  local mode
  for mode in exclusive read write; do
    expect_status 65 "$FASTEN" "$mode" /proc/self/status true 2>err
    expect_contains "$(cat err)" "fasten: cannot be a lock: /proc/self/status: it is on /proc"
    expect_contains "$(cat err)" "use a regular file"
    expect_eq 1 "$(wc -l <err)" "lines on stderr for $mode"
  done
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' sock
  expect_status 65 "$FASTEN" exclusive sock true 2>err
  expect_contains "$(cat err)" "fasten: cannot be a lock: sock: it is a socket"
}

# in_own_mounts SCRIPT: runs SCRIPT with bash in a mount namespace of its
# own, where the file systems it mounts vanish with it, with $1 the fasten
# under test; skips the test where that needs privileges the tests lack.
in_own_mounts() {
  { [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; } || skip "mounting a file system needs root (unshare -m)"
  unshare -m bash -c "set -e; $1" bash "$FASTEN"
}

test_a_lock_file_on_a_read_only_or_full_file_system_exits_73_as_with_flock() {
  # EROFS and ENOSPC are EX_CANTCREAT for flock(1): not "no such file".
  in_own_mounts '
    mkdir ro full
    mount -t tmpfs tmpfs ro
    touch ro/existing
    mount -o remount,ro ro
    mount -t tmpfs -o nr_inodes=8 tmpfs full
    i=0
    while touch full/file$i 2>/dev/null; do i=$((i + 1)); done
    for mode in exclusive read; do
      status=0
      "$1" $mode ro/lock true 2>>err || status=$?
      echo "$mode on a read-only file system: $status"
      status=0
      "$1" $mode full/lock true 2>>err || status=$?
      echo "$mode on a full file system: $status"
    done
    status=0
    "$1" exclusive ro/existing true 2>>err || status=$?
    echo "exclusive on a file of a read-only file system: $status"
    "$1" read ro/existing true
    echo "read on a file of a read-only file system: $?"' >statuses
  [ -e .skipped ] && return
  expect_eq "exclusive on a read-only file system: 73
exclusive on a full file system: 73
read on a read-only file system: 73
read on a full file system: 73
exclusive on a file of a read-only file system: 73
read on a file of a read-only file system: 0" "$(cat statuses)" "statuses"
  expect_contains "$(cat err)" "fasten: cannot create lock file: ro/lock: Read-only file system"
  expect_contains "$(cat err)" "fasten: cannot create lock file: full/lock: No space left on device"
  expect_contains "$(cat err)" "fasten: cannot open lock file for writing: ro/existing: Read-only file system; an"
}

test_a_lock_file_that_cannot_be_opened_for_want_of_descriptors_exits_71() {
  # A sanitizer's runtime needs descriptors of its own.
  [ "${FASTEN_SANITIZE:-none}" = none ] || skip "the sanitizers' runtime needs descriptors of its own"
  touch lock
  # fasten starts with 0, 1 and 2; the lock file would be the fourth.
  expect_status 71 bash -c 'ulimit -n 3 && exec "$0" exclusive lock true' "$FASTEN" 2>err
  expect_contains "$(cat err)" "fasten: cannot open lock file: lock: Too many open files"
  expect_eq 1 "$(wc -l <err)" "lines on stderr"
}

run_suite
