#!/usr/bin/env bash
# fasten status: free, shared, exclusive, who holds it, how many wait, and
# the JSON form. It never blocks, never takes the lock, never creates the file.
. "$(dirname "$0")/lib.sh"
: "${LOCK_HOLDER:?LOCK_HOLDER must name tests/helpers/lock-holder}"

# check_json FILE STATE HOLDERS WAITING HOLDS: FILE holds one JSON object of
# the documented schema with those values (HOLDERS: how many processes are
# listed; HOLDS: how many holds the lock has).
check_json() {
  python3 - "$@" <<'PY' || fail "bad JSON: $(cat "$1")"
import json, sys
path, state = sys.argv[1], sys.argv[2]
holders, waiting, holds = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
text = open(path, encoding="utf-8").read()
assert text.count("\n") == 1, "not one line"
status = json.loads(text)
assert set(status) == {"path", "state", "holds", "holders", "waiting"}, status
assert status["path"] == "lock", status
assert status["state"] == state, status
assert isinstance(status["holds"], int) and status["holds"] == holds, status
assert isinstance(status["waiting"], int) and status["waiting"] == waiting, status
assert isinstance(status["holders"], list) and len(status["holders"]) == holders, status
for holder in status["holders"]:
    assert set(holder) == {"pid", "command"}, holder
    assert holder["pid"] is None or isinstance(holder["pid"], int), holder
    assert holder["command"] is None or isinstance(holder["command"], str), holder
PY
}

test_a_free_lock_is_free_with_status_0() {
  touch lock
  expect_eq "lock: free" "$("$FASTEN" status lock)"
  expect_status 0 "$FASTEN" status lock
  "$FASTEN" status --json lock >out
  check_json out free 0 0 0
}

test_a_missing_lock_file_exits_66_and_is_not_created() {
  expect_status 66 "$FASTEN" status lock 2>err
  expect_contains "$(cat err)" "fasten: cannot read lock file: lock: No such file or directory"
  [ ! -e lock ] || fail "status created the lock file"
}

test_status_json_of_a_lock_that_cannot_be_read_prints_an_error_object() {
  expect_status 66 "$FASTEN" status --json lock >out 2>err
  expect_eq '{"path": "lock", "error": "cannot read lock file: lock: No such file or directory"}' "$(cat out)"
  expect_eq "fasten: cannot read lock file: lock: No such file or directory" "$(cat err)"
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' sock
  expect_status 65 "$FASTEN" status --json sock >out 2>err
  expect_contains "$(cat out)" '{"path": "sock", "error": "cannot be a lock: sock: it is a socket, '
  expect_eq "fasten: $(sed -n 's/.*"error": "\(.*\)"}$/\1/p' out)" "$(cat err)" "the error as on stderr"
  expect_eq 1 "$(wc -l <err)" "lines on stderr"
  # Without --json, stdout stays empty.
  expect_status 66 "$FASTEN" status lock >out 2>err
  expect_eq "" "$(cat out)"
}

test_an_empty_lock_is_one_usage_error_for_status_and_the_lock_subcommands() {
  expect_status 64 "$FASTEN" status "" >out 2>err
  expect_eq "fasten: bad LOCK: the path is empty" "$(cat err)"
  expect_status 64 "$FASTEN" status --json "" >out 2>err
  expect_eq "fasten: bad LOCK: the path is empty" "$(cat err)"
  expect_status 64 "$FASTEN" exclusive "" true 2>err
  expect_eq "fasten: bad LOCK: the path is empty" "$(cat err)"
}

test_an_exclusive_holder_is_named_with_its_command_line() {
  hold holder exclusive lock -o
  local out
  out=$("$FASTEN" status lock) || true
  expect_status 1 "$FASTEN" status lock
  expect_contains "$out" "lock: exclusive, held by pid $holder_pid ("
  expect_contains "$out" "exclusive -o lock sh -c"
  "$FASTEN" status --json lock >out || true
  check_json out exclusive 1 0 1
  release holder
}

test_the_command_that_inherited_the_lock_is_named_too_where_it_holds_it() {
  "$FASTEN" exclusive lock sh -c 'echo $$ > child; exec sleep 300' &
  local fasten_pid=$!
  wait_for_file child
  wait_for_command "$(cat child)" "sleep 300"
  local out
  out=$("$FASTEN" status lock) || true
  kill "$(cat child)"
  if classic_locks; then
    # The lock is fasten's alone: the command did not inherit it.
    expect_contains "$out" "pid $fasten_pid ("
    case "$out" in *"(sleep 300)"*) fail "the command is named as a holder: $out" ;; esac
  else
    # One hold: named by the command, with the fasten that runs it.
    expect_eq "lock: exclusive, held by pid $(cat child) (sleep 300) under fasten pid $fasten_pid" "$out"
  fi
  wait "$fasten_pid" || true
}

# A script that locked its own descriptor (--fd) and started a command that
# inherited it is no fasten: the hold is the script's, named by it, with its
# child folded in, and not "under fasten pid" the shell.
test_a_script_that_holds_through_fd_is_named_by_itself_not_as_a_fasten() {
  classic_locks && return 0
  echo 'exec 9>>lock; "$1" exclusive --fd 9 || exit 1; sleep 300 & echo $! >child; wait' >locker.sh
  bash locker.sh "$FASTEN" &
  local script_pid=$!
  wait_for_file child
  wait_for_command "$(cat child)" "sleep 300"
  local out
  out=$("$FASTEN" status lock) || true
  local line
  line=$("$FASTEN" exclusive -n -v lock true 2>&1 9>&-) || true
  kill "$(cat child)"
  wait "$script_pid" || true
  expect_eq "lock: exclusive, held by pid $script_pid (bash locker.sh $FASTEN)" "$out"
  expect_contains "$line" "it is exclusive, held by pid $script_pid (bash locker.sh $FASTEN)"
}

test_readers_are_counted() {
  hold one read lock -o
  hold two read lock -o
  local out
  out=$("$FASTEN" status lock) || true
  expect_contains "$out" "lock: shared by 2, held by pid "
  expect_contains "$out" "pid $one_pid"
  expect_contains "$out" "pid $two_pid"
  "$FASTEN" status --json lock >out || true
  check_json out shared 2 0 2
  release one
  release two
}

test_waiting_processes_are_counted() {
  hold holder exclusive lock -o
  "$FASTEN" write lock true &
  "$FASTEN" read lock true &
  wait_for_waiters lock 2
  local out
  out=$("$FASTEN" status lock) || true
  expect_contains "$out" "; 2 waiting"
  "$FASTEN" status --json lock >out || true
  check_json out exclusive 1 2 1
  release holder
  wait
}

test_a_foreign_fcntl_holder_is_named() {
  mkfifo stay
  "$LOCK_HOLDER" classic exclusive lock <stay >held &
  local pid=$!
  exec 7>stay
  wait_for_file held
  until grep -q locked held; do sleep 0.01; done
  local out
  out=$("$FASTEN" status lock) || true
  expect_contains "$out" "lock: exclusive, held by pid $pid ($LOCK_HOLDER classic exclusive lock)"
  exec 7>&-
  wait "$pid"
  expect_eq "lock: free" "$("$FASTEN" status lock)"
}

test_a_holder_that_cannot_be_seen_has_a_null_pid() {
  command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed"
  chmod 755 .
  touch lock
  chmod 644 lock
  hold holder exclusive lock
  local as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  local out
  if classic_locks; then
    # A classic lock names its process in /proc/locks, for every user to see.
    out=$("${as_nobody[@]}" "$FASTEN" status lock) || true
    expect_contains "$out" "lock: exclusive, held by pid $holder_pid"
  else
    out=$("${as_nobody[@]}" "$FASTEN" status lock) || true
    expect_eq "lock: exclusive, held by a process that cannot be seen" "$out"
    "${as_nobody[@]}" "$FASTEN" status --json lock >out || true
    check_json out exclusive 1 0 1
    expect_contains "$(cat out)" '{"pid": null, "command": null}'
  fi
  release holder
}

test_status_never_blocks_nor_takes_the_lock() {
  hold holder exclusive lock -o
  expect_status 1 timeout 5 "$FASTEN" status lock
  release holder
  hold reader read lock -o
  "$FASTEN" status lock >/dev/null || true
  # Had status taken a lock, it would be gone with it; the reader's remains.
  expect_status 75 "$FASTEN" write -n lock true
  release reader
}

test_verbose_says_whom_it_waits_for() {
  hold holder exclusive lock -o
  "$FASTEN" read -v lock true 2>err &
  local reader=$!
  wait_for_waiters lock 1
  release holder
  wait "$reader"
  expect_contains "$(cat err)" "fasten: waiting to lock lock (read); it is exclusive, held by pid $holder_pid"
  expect_contains "$(cat err)" "fasten: locked lock (read) after "
  expect_contains "$(cat err)" "fasten: unlocked lock (read) after holding it "
}

# count_of TEXT WORDS: how many times WORDS occur in TEXT.
count_of() {
  grep -oF -- "$2" <<<"$1" | wc -l
}

# A long wait in a log, not a terminal, says every FASTEN_VERBOSE_INTERVAL
# seconds (60 by default) that it goes on, and on whom, and stops once
# the lock is held.
test_verbose_says_every_interval_that_it_still_waits_and_on_whom() {
  hold holder exclusive lock -o
  # By absolute path and not on the test's output (lib.sh's hold says why).
  FASTEN_VERBOSE_INTERVAL=0.1 "$FASTEN" read -v -w 600 "$PWD/lock" true >/dev/null 2>err &
  local reader=$!
  local deadline=$((SECONDS + 20))
  until [ "$(grep -c 'still waiting' err)" -ge 2 ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "no second 'still waiting' line: $(cat err)"
    sleep 0.02
  done
  release holder
  wait "$reader"
  grep -m 1 'still waiting' err | grep -qE "^fasten: still waiting [0-9]+ s of 600 s for $PWD/lock \(read\); it is \
exclusive, held by pid $holder_pid \(" || fail "the line: $(cat err)"
  sed -n '/fasten: locked /,$p' err | grep -q 'still waiting' && fail "said after the lock was held: $(cat err)"
  expect_eq 1 "$(grep -c 'fasten: waiting up to 600 s to lock ' err)"
}

test_without_verbose_or_within_the_interval_no_still_waiting_line_is_said() {
  hold holder exclusive lock -o
  FASTEN_VERBOSE_INTERVAL=0.1 "$FASTEN" read -w 600 "$PWD/lock" true >/dev/null 2>err-quiet &
  local quiet=$!
  "$FASTEN" read -v "$PWD/lock" true >/dev/null 2>err-default &
  local default=$!
  wait_for_waiters lock 2
  release holder
  wait "$quiet" "$default"
  expect_eq "" "$(cat err-quiet)"
  grep -q 'still waiting' err-default && fail "said within 60 s: $(cat err-default)"
  expect_contains "$(cat err-default)" "fasten: waiting to lock $PWD/lock (read)"
}

test_a_bad_verbose_interval_is_a_usage_error_that_names_it() {
  local value
  for value in abc 0 -1 ''; do
    FASTEN_VERBOSE_INTERVAL=$value expect_status 64 "$FASTEN" exclusive -v lock true 2>err
    expect_contains "$(cat err)" "fasten: FASTEN_VERBOSE_INTERVAL: expected seconds greater than 0"
  done
  # The plain form, LOCK [--] COMMAND with no option, reads it too.
  FASTEN_VERBOSE_INTERVAL=abc expect_status 64 "$FASTEN" exclusive lock -- true 2>err
  expect_contains "$(cat err)" "fasten: FASTEN_VERBOSE_INTERVAL: expected seconds greater than 0"
}

# --slots 3 with three jobs, each a fasten, its `sh -c` and a child of
# that: status says three holds, each by its command with its pid, the
# fasten and the command's child folded in; --json lists every process.
test_status_names_each_hold_once_by_its_command_and_json_lists_every_process() {
  local i
  for i in 1 2 3; do
    "$FASTEN" exclusive --slots 3 "$PWD/lock" sh -c 'echo $$ >"$0.$FASTEN_SLOT.tmp" &&
      mv "$0.$FASTEN_SLOT.tmp" "$0.$FASTEN_SLOT"; sleep 300; :' "$PWD/jobs" >/dev/null 2>&1 &
  done
  local deadline=$((SECONDS + 20)) shells=()
  for i in 0 1 2; do
    wait_for_file "jobs.$i"
    shells+=("$(cat "jobs.$i")")
    until pgrep -P "${shells[i]}" >/dev/null; do
      [ "$SECONDS" -lt "$deadline" ] || fail "the command of slot $i started no child"
      sleep 0.01
    done
  done
  "$FASTEN" exclusive --slots 3 "$PWD/lock" true >/dev/null 2>&1 &
  wait_for_waiters lock 1
  # Each hold's processes: fasten, sh and sleep, or with classic locks fasten alone.
  local processes=9
  classic_locks && processes=3
  until [ "$(status_json lock | grep -o '"pid"' | wc -l)" -eq "$processes" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "not $processes processes: $(status_json lock)"
    sleep 0.01
  done
  local text
  text=$("$FASTEN" status lock || true)
  expect_contains "$text" "lock: 3 of 3 slots held by pid "
  expect_eq 3 "$(count_of "$text" " in slot ")" "$text"
  expect_eq 3 "$(($(count_of "$text" "pid ") - $(count_of "$text" "fasten pid ")))" "$text"
  if ! classic_locks; then
    for i in 0 1 2; do
      expect_contains "$text" "pid ${shells[i]} (sh -c echo "
    done
    expect_eq 3 "$(count_of "$text" " under fasten pid ")" "$text"
    case "$text" in *"(sleep "* | *"(fasten "*) fail "a process of a hold named on its own: $text" ;; esac
  fi
  for i in 0 1 2; do
    pkill -TERM -P "${shells[i]}"
  done
  wait
}

# traced_file_calls OUT COMMAND...: runs COMMAND under strace, its file-name
# system calls (open, stat, readlink, ...) written to OUT.
traced_file_calls() {
  local out=$1
  shift
  command -v strace >/dev/null || fail "strace is needed"
  strace -f -qq -e trace=%file -o "$out" "$@"
}

# expect_no_foreign_files TRACE: the calls in TRACE touch no other
# process's files: no /proc/PID/fd/N (which reaches the file and its mount),
# no "private" file that only another process has open.
expect_no_foreign_files() {
  if grep -E '/proc/[0-9]+/fd/|private' "$1" >foreign; then
    fail "other processes' files were touched:" "$(head -5 foreign)"
  fi
}

test_status_and_verbose_never_stat_nor_open_other_processes_files() {
  touch private
  sleep 300 5<private >/dev/null 2>&1 &
  local other=$!
  hold holder exclusive lock
  traced_file_calls trace-status "$FASTEN" status lock >out || true
  expect_contains "$(cat out)" "lock: exclusive, held by pid "
  expect_contains "$(cat out)" "pid $holder_pid"
  expect_no_foreign_files trace-status
  traced_file_calls trace-verbose "$FASTEN" read -v lock true 2>err &
  local reader=$!
  wait_for_waiters lock 1
  release holder
  wait "$reader"
  expect_contains "$(cat err)" "; it is exclusive, held by pid "
  expect_contains "$(cat err)" "pid $holder_pid"
  expect_no_foreign_files trace-verbose
  kill "$other"
}

test_text_escapes_and_json_carries_any_bytes_of_paths_and_command_lines() {
  local lock=$'bad\xff.lock'
  touch "$lock"
  mkfifo stay
  "$FASTEN" read -o "$lock" sh -c 'touch held; read -r _ <stay' sh $'\xff\e]0;PWNED\a\e[2J' >/dev/null 2>&1 &
  local holder=$!
  wait_for_file held
  "$FASTEN" status "$lock" >text || true
  if LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f\x80-\xff]' text; then
    fail "raw control or non-UTF-8 bytes in: $(od -c text | head -5)"
  fi
  expect_contains "$(cat text)" 'bad\xff.lock: shared by 1, held by pid '
  expect_contains "$(cat text)" ' sh -c touch held; read -r _ <stay sh \xff\e]0;PWNED\a\e[2J)'
  "$FASTEN" status --json "$lock" >json || true
  python3 - json <<'PY' || fail "bad JSON: $(od -c json | head -5)"
import json, os, sys
raw = open(sys.argv[1], "rb").read()
assert all(b < 0x80 for b in raw), raw  # \u escapes for everything else
status = json.loads(raw.decode("utf-8"))
assert os.fsencode(status["path"]) == b"bad\xff.lock", status
assert status["state"] == "shared" and status["holds"] == 1, status
command = os.fsencode(status["holders"][0]["command"])
assert command.endswith(b" sh \xff\x1b]0;PWNED\x07\x1b[2J"), command
PY
  echo >stay
  wait "$holder"
}

test_status_does_not_list_itself_where_it_inherited_the_lock() {
  "$FASTEN" exclusive lock sh -c 'echo $$ >self; exec "$1" status --json lock' sh "$FASTEN" >out &
  local fasten_pid=$!
  expect_status 1 wait "$fasten_pid"
  python3 - out "$fasten_pid" "$(cat self)" <<'PY' || fail "status listed itself: $(cat out)"
import json, sys
status = json.load(open(sys.argv[1]))
fasten, itself = int(sys.argv[2]), int(sys.argv[3])
assert status["state"] == "exclusive" and status["holds"] == 1, status
assert [holder["pid"] for holder in status["holders"]] == [fasten], status
PY
}

test_status_run_by_a_shell_that_holds_the_lock_with_fd_lists_the_shell_not_itself() {
  classic_locks && return 0 # --fd needs locks that belong to open files
  exec 9>>lock
  "$FASTEN" exclusive --fd 9
  "$FASTEN" status --json lock >out || true
  python3 - out "$BASHPID" <<'PY' || fail "wrong holders: $(cat out)"
import json, sys
status = json.load(open(sys.argv[1]))
assert status["state"] == "exclusive" and status["holds"] == 1, status
assert [holder["pid"] for holder in status["holders"]] == [int(sys.argv[2])], status
PY
  exec 9>&-
}

test_a_failed_write_of_the_status_exits_74() {
  touch lock
  local got=0
  "$FASTEN" status lock >/dev/full 2>err || got=$?
  expect_eq 74 "$got" "exit status"
  expect_eq 1 "$(wc -l <err)" "lines on stderr"
  expect_contains "$(cat err)" "fasten: cannot write the output: No space left on device"
  hold holder exclusive lock -o
  got=0
  "$FASTEN" status --json lock >/dev/full 2>err || got=$?
  expect_eq 74 "$got" "exit status of a held lock's status"
  expect_eq 1 "$(wc -l <err)" "lines on stderr"
  release holder
}

test_status_also_names_who_holds_a_flock_lock_on_the_same_file() {
  mkfifo flock.fifo
  flock lock sh -c 'touch flock.held; read -r _ <flock.fifo' &
  local locker=$!
  wait_for_file flock.held
  local text
  text=$("$FASTEN" status lock) || true
  expect_contains "$text" "lock: free; also locked with flock(2) by pid "
  expect_contains "$text" "(flock lock sh -c"
  expect_contains "$text" ": fasten does not exclude flock(1)"
  "$FASTEN" status --json lock >out || true
  python3 - out <<'PY' || fail "wrong flock holders: $(cat out)"
import json, sys
status = json.load(open(sys.argv[1]))
assert status["state"] == "free" and status["holders"] == [], status
assert [h["command"].split()[0] for h in status["flock_holders"]] == ["flock"], status
PY
  echo >flock.fifo
  wait "$locker"
  expect_eq "" "$(status_json lock | grep -o flock_holders || true)" "flock_holders once released"
}

# check_slots FILE STATE HOLDS SLOTS_HELD WAITING HOLDER...: FILE holds the
# JSON status of a lock of 3 slots with those values, whose holders are
# HOLDER... (PID, or PID:SLOT for a slot holder), in any order.
check_slots() {
  python3 - "$@" <<'PY' || fail "wrong status: $(cat "$1")"
import json, sys
path, state, holds, slots_held, waiting = sys.argv[1:6]
status = json.load(open(path))
want = {"state": state, "holds": int(holds), "slots": 3, "slots_held": int(slots_held), "waiting": int(waiting)}
assert {key: status.get(key) for key in want} == want, status
holders = sorted(f"{h['pid']}:{h['slot']}" if "slot" in h else str(h["pid"]) for h in status["holders"])
assert holders == sorted(sys.argv[6:]), (holders, status)
PY
}

# A slot holder takes its slot, then waits for the lock as a reader does: one
# that has its slot but waits is waiting, and holds no slot yet. Each mix of
# readers, writers and slot holders, held and waiting (with -o, so that the
# holder is fasten alone, the one that status names). The waiters are started
# by absolute path and not on the test's output (lib.sh's hold says why).
test_slot_holders_that_wait_behind_a_writer_are_waiting_not_holding() {
  hold writer write lock -o
  "$FASTEN" exclusive --slots 3 -o "$PWD/lock" true >/dev/null 2>&1 &
  "$FASTEN" exclusive --slots 3 -o "$PWD/lock" true >/dev/null 2>&1 &
  wait_for_waiters lock 2
  local text
  text=$("$FASTEN" status lock || true)
  expect_contains "$text" "lock: exclusive, held by pid $writer_pid ("
  expect_eq "; 2 waiting" "${text: -11}" "the end of: $text"
  # Not any "slot": the holder's command line names fasten's path, which may.
  case "$text" in *"slots held"* | *" in slot "*) fail "slots said to be held: $text" ;; esac
  "$FASTEN" status --json lock >out || true
  check_slots out exclusive 1 0 2 "$writer_pid"
  release writer
  wait
}

# queue_a_writer_then_a_slot_holder: a writer, then a holder of one of 3
# slots, wait behind the holds made so far, counted by status.
queue_a_writer_then_a_slot_holder() {
  "$FASTEN" write -o "$PWD/lock" true >/dev/null 2>&1 &
  wait_for_waiters lock 1
  "$FASTEN" exclusive --slots 3 -o "$PWD/lock" true >/dev/null 2>&1 &
  wait_for_waiters lock 2
}

test_a_reader_a_slot_holder_and_two_waiting_behind_a_writer() {
  hold reader read lock -o
  hold slot exclusive lock --slots 3 -o
  queue_a_writer_then_a_slot_holder
  local text
  text=$("$FASTEN" status lock || true)
  expect_contains "$text" "lock: 1 of 3 slots held and shared by 1, held by pid "
  expect_contains "$text" "pid $reader_pid ("
  expect_contains "$text" "pid $slot_pid ("
  expect_contains "$text" ") in slot 0"
  expect_eq "; 2 waiting" "${text: -11}" "the end of: $text"
  "$FASTEN" status --json lock >out || true
  check_slots out shared 2 1 2 "$reader_pid" "$slot_pid:0"
  release reader
  release slot
  wait
}

test_a_reader_and_a_slot_holder_waiting_behind_a_writer() {
  hold reader read lock -o
  queue_a_writer_then_a_slot_holder
  local text
  text=$("$FASTEN" status lock || true)
  expect_contains "$text" "lock: shared by 1, held by pid $reader_pid ("
  expect_eq "; 2 waiting" "${text: -11}" "the end of: $text"
  "$FASTEN" status --json lock >out || true
  check_slots out shared 1 0 2 "$reader_pid"
  release reader
  wait
}

test_a_slot_holder_and_another_waiting_behind_a_writer() {
  hold slot exclusive lock --slots 3 -o
  queue_a_writer_then_a_slot_holder
  local text
  text=$("$FASTEN" status lock || true)
  expect_contains "$text" "lock: 1 of 3 slots held by pid $slot_pid ("
  expect_contains "$text" ") in slot 0; 2 waiting"
  "$FASTEN" status --json lock >out || true
  check_slots out shared 1 1 2 "$slot_pid:0"
  release slot
  wait
}

test_a_slot_holder_that_cannot_be_seen_still_holds_its_slot() {
  classic_locks && return 0 # a classic lock names its process for all to see
  chmod 755 .
  touch lock
  chmod 644 lock
  hold slot exclusive lock --slots 3 -o
  local out
  out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$FASTEN" status lock) || true
  expect_eq "lock: 1 of 3 slots held by a process that cannot be seen" "$out"
  release slot
}

# Holders come and go beside a reader that stays: a process that ends while
# status (or -v) reads its files in /proc is left out, never an error. Their
# command lines are long (500 kB), so that reading one takes many reads, and
# a holder that ends between two of them fails the next with ESRCH: before,
# about 1 query in 6 here exited 71.
test_holders_that_end_while_status_reads_them_are_left_out() {
  hold reader read lock -o
  local long churners=() i got failures=0
  long=$(head -c 100000 /dev/zero | tr '\0' x)
  for i in 1 2; do
    # By absolute path, for the runner's clean-up after a failure.
    sh -c 'while [ ! -e "$1/stop" ]; do "$2" read "$1/lock" true "$3" "$3" "$3" "$3" "$3"; done' \
      sh "$PWD" "$FASTEN" "$long" >/dev/null 2>&1 &
    churners+=($!)
  done
  for i in $(seq 60); do
    got=0
    "$FASTEN" status lock >/dev/null 2>>err || got=$?
    [ "$got" -eq 1 ] || failures=$((failures + 1))
    got=0
    "$FASTEN" write -v -n lock true 2>>err || got=$?
    [ "$got" -eq 75 ] || failures=$((failures + 1))
  done
  touch stop
  wait "${churners[@]}"
  release reader
  expect_eq 0 "$failures" "queries that failed of 120 ($(grep -v -e 'gave up on lock' err | sort | uniq -c))"
}

test_without_proc_status_says_that_proc_is_not_mounted() {
  # A sanitizer's runtime reads /proc itself, before fasten's main.
  [ "${FASTEN_SANITIZE:-none}" = none ] || return 0
  touch lock
  # A mount namespace of its own, where /proc is an empty tmpfs.
  unshare --mount --propagation private true 2>/dev/null || fail "cannot make a mount namespace here"
  local got=0
  unshare --mount --propagation private sh -c 'mount -t tmpfs none /proc && exec "$0" status "$1"' \
    "$FASTEN" "$PWD/lock" 2>err || got=$?
  expect_eq 71 "$got" "exit status"
  expect_contains "$(cat err)" "fasten: cannot read /proc/locks: /proc is not mounted"
}


test_status_of_a_file_that_cannot_be_a_lock_says_so_with_65() {
  expect_status 65 "$FASTEN" status /proc/self/status 2>err
  expect_contains "$(cat err)" "fasten: cannot be a lock: /proc/self/status: it is on /proc"
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' sock
  expect_status 65 "$FASTEN" status --json sock 2>err
  expect_contains "$(cat err)" "fasten: cannot be a lock: sock: it is a socket"
}

run_suite
