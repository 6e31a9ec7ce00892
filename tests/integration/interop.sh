#!/usr/bin/env bash
# Interoperation with real peers: Python fasteners, lockf(3)/fcntl(2) users
# (lock-holder classic), and util-linux flock(1), whose flock(2) locks are a
# separate table.
. "$(dirname "$0")/lib.sh"
: "${LOCK_HOLDER:?LOCK_HOLDER must name tests/helpers/lock-holder}"

# Debian's python3 has python3-fasteners; a python3 earlier in PATH may not.
PYTHON=/usr/bin/python3

# fasteners_hold NAME KIND LOCK: a Python process holding LOCK through
# fasteners (KIND: exclusive = InterProcessLock, read/write =
# InterProcessReaderWriterLock) until `release NAME`.
fasteners_hold() {
  local name=$1 kind=$2 lock=$3
  mkfifo "$name.fifo"
  "$PYTHON" - "$kind" "$lock" "$PWD/$name" <<'PY' &
import sys, fasteners
kind, path, name = sys.argv[1:]
if kind == "exclusive":
    lock = fasteners.InterProcessLock(path)
    lock.acquire()
elif kind == "read":
    lock = fasteners.InterProcessReaderWriterLock(path)
    lock.acquire_read_lock()
else:
    lock = fasteners.InterProcessReaderWriterLock(path)
    lock.acquire_write_lock()
open(name + ".held", "w").close()
open(name + ".fifo").read()
PY
  eval "${name}_pid=$!"
  wait_for_file "$name.held"
}

# fasteners_try KIND LOCK: one try through fasteners; exits 0 if it got the
# lock, 75 if not.
fasteners_try() {
  "$PYTHON" - "$1" "$2" <<'PY'
import sys, fasteners
kind, path = sys.argv[1:]
if kind == "exclusive":
    got = fasteners.InterProcessLock(path).acquire(blocking=False)
else:
    lock = fasteners.InterProcessReaderWriterLock(path)
    acquire = lock.acquire_read_lock if kind == "read" else lock.acquire_write_lock
    got = acquire(blocking=False)
sys.exit(0 if got else 75)
PY
}

test_python_fasteners_is_there() {
  "$PYTHON" -c 'import fasteners' || fail "python3-fasteners is not installed"
}

test_fasteners_interprocesslock_and_fasten_exclusive_exclude_each_other() {
  fasteners_hold py exclusive lock
  expect_status 75 "$FASTEN" exclusive -n lock true
  expect_status 75 "$FASTEN" read -n lock true
  release py
  expect_status 0 "$FASTEN" exclusive -n lock true
  hold holder exclusive lock
  expect_status 75 fasteners_try exclusive lock
  release holder
  expect_status 0 fasteners_try exclusive lock
}

test_fasteners_readers_share_with_fasten_read_and_exclude_fasten_write() {
  fasteners_hold py read lock
  expect_status 0 "$FASTEN" read -n lock true
  expect_status 75 "$FASTEN" write -n lock true
  release py
  hold reader read lock
  expect_status 0 fasteners_try read lock
  expect_status 75 fasteners_try write lock
  release reader
}

test_fasteners_writers_exclude_fasten_readers_and_the_reverse() {
  fasteners_hold py write lock
  expect_status 75 "$FASTEN" read -n lock true
  expect_status 75 "$FASTEN" write -n lock true
  release py
  hold writer write lock
  expect_status 75 fasteners_try read lock
  expect_status 75 fasteners_try write lock
  release writer
}

test_a_waiting_fasten_gets_the_lock_when_fasteners_releases_it() {
  fasteners_hold py exclusive lock
  "$FASTEN" exclusive -w 10 lock touch ran &
  local waiter=$!
  wait_for_waiters lock 1
  [ ! -e ran ] || fail "fasten ran while fasteners held the lock"
  release py
  wait "$waiter"
  [ -e ran ] || fail "fasten did not run after fasteners released"
}

# holder_hold NAME API MODE LOCK: lock-holder holding LOCK until `release NAME`.
holder_hold() {
  local name=$1
  # A second hold under the same name must not find the first one's "locked".
  rm -f "$name.fifo" "$name.out"
  mkfifo "$name.fifo"
  "$LOCK_HOLDER" "$2" "$3" "$4" <"$name.fifo" >"$name.out" &
  eval "${name}_pid=$!"
  exec {fd}>"$name.fifo"
  eval "${name}_fd=$fd"
  local i=0
  until grep -q locked "$name.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 1000 ] || fail "lock-holder did not get the lock"
    sleep 0.01
  done
}

holder_release() {
  local fd
  fd=$(eval echo "\$${1}_fd")
  exec {fd}>&-
  wait "$(eval echo "\$${1}_pid")"
}

test_lockf_and_fcntl_users_and_fasten_exclude_each_other() {
  holder_hold c classic exclusive lock
  expect_status 75 "$FASTEN" exclusive -n lock true
  expect_status 75 "$FASTEN" read -n lock true
  holder_release c
  holder_hold c classic shared lock
  expect_status 0 "$FASTEN" read -n lock true
  expect_status 75 "$FASTEN" write -n lock true
  holder_release c
  hold holder exclusive lock
  expect_status 75 "$LOCK_HOLDER" classic shared lock try
  expect_status 75 "$LOCK_HOLDER" classic exclusive lock try
  release holder
  hold reader read lock
  expect_status 0 "$LOCK_HOLDER" classic shared lock try
  expect_status 75 "$LOCK_HOLDER" classic exclusive lock try
  release reader
}

test_flock_2_locks_are_a_separate_table_as_the_manual_says() {
  # util-linux flock(1) takes flock(2) locks: on Linux they neither see nor
  # are seen by fcntl locks. The manual says so; this keeps it honest.
  hold holder exclusive lock
  expect_status 0 flock -n lock true
  expect_status 0 "$LOCK_HOLDER" flock exclusive lock try
  release holder
}

run_suite
