#!/usr/bin/env bash
# Running the command: its arguments, environment, descriptors, signals.
. "$(dirname "$0")/lib.sh"

test_arguments_after_lock_pass_to_the_command_untouched() {
  expect_eq "-n|-w|3|" "$("$FASTEN" write lock -- printf '%s|' -n -w 3)" "after --"
  expect_eq "a -v --x" "$("$FASTEN" write lock echo a -v --x)" "without --"
  expect_eq "with  two  spaces|*" "$("$FASTEN" read lock printf '%s|%s' 'with  two  spaces' '*')" "quoting"
}

test_dash_c_runs_the_string_with_bin_sh_never_shell() {
  expect_eq "a b" "$(SHELL=/bin/false "$FASTEN" exclusive lock -c 'echo a | tr "\n" " "; echo b')"
  expect_eq "x" "$("$FASTEN" exclusive -c 'echo x' lock)"
  expect_status 4 "$FASTEN" exclusive lock -c 'exit 4'
  expect_contains "$("$FASTEN" exclusive lock -c 'readlink /proc/$$/exe')" "sh"
}

test_the_command_gets_fasten_lock_and_fasten_mode() {
  expect_eq "lock exclusive" "$("$FASTEN" exclusive lock sh -c 'echo $FASTEN_LOCK $FASTEN_MODE')"
  expect_eq "$PWD/lock read" "$("$FASTEN" read "$PWD/lock" sh -c 'echo $FASTEN_LOCK $FASTEN_MODE')"
  expect_eq "write" "$("$FASTEN" write lock printenv FASTEN_MODE)"
}

# sig_ign_of COMMAND...: the SigIgn mask of the process that COMMAND ends in.
sig_ign_of() {
  "$@" | awk '/^SigIgn/ { print $2 }'
}

test_the_command_keeps_the_signals_fasten_inherited_ignored_and_gets_the_rest_at_default() {
  local ignore='trap "" HUP INT QUIT TERM PIPE USR2 RTMIN+3' direct options
  # What exec gives the command when the caller runs it itself.
  direct=$(sig_ign_of bash -c "$ignore"'; exec cat /proc/self/status')
  [ $((0x$direct & 0x2)) -ne 0 ] || fail "the caller's SigIgn $direct lacks INT"
  # -w gives the timer signal (RTMIN+3) a handler in fasten; -F execs in place.
  for options in "" "-w 30" "-F" "-F -w 30"; do
    # shellcheck disable=SC2086
    expect_eq "$direct" "$(sig_ign_of bash -c "$ignore"'; exec "$0" exclusive '"$options"' lock cat /proc/self/status' \
      "$FASTEN")" "SigIgn of the command (fasten exclusive $options)"
  done
  expect_eq "0000000000000000" "$(sig_ign_of env --default-signal "$FASTEN" exclusive lock cat /proc/self/status)" \
    "SigIgn of the command when nothing was ignored"
}

test_the_command_starts_with_an_empty_signal_mask() {
  local status
  status=$(python3 -c '
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGUSR1})
os.execv(sys.argv[1], [sys.argv[1], "exclusive", "lock", "cat", "/proc/self/status"])' "$FASTEN")
  expect_eq "0000000000000000" "$(echo "$status" | awk '/^SigBlk/ { print $2 }')" "SigBlk"
}

test_a_hup_that_fasten_inherited_ignored_neither_ends_it_nor_reaches_the_command() {
  # As under nohup: HUP ignored from the start.
  (trap '' HUP; exec "$FASTEN" exclusive lock sh -c '
    touch ready
    until [ -e go ]; do sleep 0.01; done
    awk "/^SigIgn/ { print \$2 }" /proc/self/status
    echo survived') >out 2>err &
  local pid=$!
  wait_for_file ready
  kill -HUP "$pid"
  touch go
  local status=0
  wait "$pid" || status=$?
  expect_eq 0 "$status" "fasten's status after SIGHUP ($(cat err))"
  expect_eq survived "$(tail -n 1 out)" "the command's last line"
  [ $((0x$(head -n 1 out) & 0x1)) -ne 0 ] || fail "the command's SigIgn $(head -n 1 out) lacks HUP"
}

# The descriptors of the command that point at the lock file.
lock_fds_of_command() {
  "$FASTEN" exclusive "$@" sh -c 'for fd in /proc/$$/fd/*; do readlink "$fd"; done' | grep -c "$PWD/lock$" || true
}

test_the_command_inherits_the_lock_descriptor_unless_dash_o() {
  expect_eq 1 "$(lock_fds_of_command lock)" "descriptors without -o"
  expect_eq 0 "$(lock_fds_of_command -o lock)" "descriptors with -o"
}

test_dash_f_execs_in_place_keeping_the_pid_and_the_lock() {
  "$FASTEN" exclusive -F lock sh -c 'echo $$ > pid; touch held; until [ -e go ]; do sleep 0.01; done' &
  local fasten_pid=$!
  wait_for_file held
  expect_eq "$fasten_pid" "$(cat pid)" "the command's pid"
  expect_status 75 "$FASTEN" exclusive -n lock true
  touch go
  wait "$fasten_pid"
  expect_status 0 "$FASTEN" exclusive -n lock true
  expect_status 127 "$FASTEN" exclusive -F lock no-such-command-xyz 2>/dev/null
}

test_a_descriptor_kept_by_a_daemon_of_the_command_does_not_keep_the_lock() {
  "$FASTEN" exclusive lock sh -c 'sleep 60 >/dev/null 2>&1 & echo $! > daemon'
  # The daemon still has the lock's descriptor, but fasten released the lock.
  local daemon fd
  daemon=$(cat daemon)
  for fd in /proc/"$daemon"/fd/*; do readlink "$fd"; done | grep -qx "$PWD/lock" ||
    fail "the daemon does not hold the lock's descriptor"
  expect_status 0 "$FASTEN" exclusive -n lock true
  kill "$daemon"
}

# passed_on SIGNAL [OPTION...]: SIGNAL sent to a fasten (with OPTIONs) whose
# command traps it reaches the command, and the command's status comes back.
passed_on() {
  local sig=$1 pid status=0
  shift
  rm -f ready got
  # Every signal at its default: a script's background job would have INT
  # and QUIT ignored, and fasten would keep them so. `wait` returns at once
  # on a trapped signal; the trap ends the sleep, which shares the lock.
  env --default-signal "$FASTEN" exclusive "$@" lock bash -c '
    trap "echo $1 >> got; kill \$!; exit 42" "$1"
    sleep 60 &
    touch ready
    wait $!' bash "$sig" &
  pid=$!
  wait_for_file ready
  kill -s "$sig" "$pid"
  wait "$pid" || status=$?
  expect_eq 42 "$status" "status after SIG$sig ($*)"
  expect_eq "$sig" "$(cat got)" "what the command got for SIG$sig ($*)"
}

test_signals_sent_to_fasten_reach_the_command_once_and_its_status_comes_back() {
  local sig
  for sig in HUP INT QUIT TERM USR1 USR2; do
    passed_on "$sig"
  done
}

test_other_signals_that_would_end_fasten_while_the_command_runs_are_passed_on_too() {
  # At their default these end a process; fasten must not die of one and
  # report an end of the command that has not happened, while the command
  # runs on with the lock.
  local sig
  for sig in ALRM VTALRM PROF XCPU XFSZ IO PWR STKFLT RTMIN RTMIN+5 RTMAX; do
    passed_on "$sig"
  done
}

# timer_signal_passed_on_after_a_wait HOLDER OPTION...: fasten (with
# OPTIONs, -w) waits until `hold`'s HOLDER is released, takes the lock, and
# then passes the timer signal of its wait (RTMIN+3), which has fasten's
# handler only while it waits, on to the command.
timer_signal_passed_on_after_a_wait() {
  local holder=$1 pid status=0
  shift
  rm -f ready got
  env --default-signal "$FASTEN" exclusive "$@" -w 30 lock bash -c '
    trap "echo $1 >> got; kill \$!; exit 42" "$1"
    sleep 60 &
    touch ready
    wait $!' bash RTMIN+3 &
  pid=$!
  wait_for_waiters lock 1
  release "$holder"
  wait_for_file ready
  kill -s RTMIN+3 "$pid"
  wait "$pid" || status=$?
  expect_eq 42 "$status" "status after SIGRTMIN+3 ($*)"
  expect_eq RTMIN+3 "$(cat got)" "what the command got for SIGRTMIN+3 ($*)"
}

test_the_timer_signal_of_a_wait_is_passed_on_once_the_wait_is_over() {
  hold first exclusive lock
  timer_signal_passed_on_after_a_wait first
  hold second exclusive lock --slots 2
  hold third exclusive lock --slots 2
  timer_signal_passed_on_after_a_wait third --slots 2
  release second
}

test_a_signal_sent_to_the_process_group_of_fasten_and_the_command_reaches_the_command_once_or_twice() {
  # fasten cannot tell it from a signal sent to fasten alone (both come with
  # SI_USER and the sender's pid), so it passes it on: the command gets it
  # directly and from fasten, and twice unless the kernel merged the two
  # while the first was pending. The manual says so.
  setsid "$FASTEN" exclusive lock bash -c '
    trap "echo TERM >> got" TERM
    touch ready
    until [ -e go ]; do sleep 0.01; done' &
  local pid=$! group status=0
  wait_for_file ready
  group=$(ps -o pgid= -p "$pid" | tr -d ' ')
  [ "$group" != "$(ps -o pgid= -p $$ | tr -d ' ')" ] || fail "fasten is in the test's process group"
  kill -TERM -- "-$group"
  wait_for_file got
  touch go
  wait "$pid" || status=$?
  expect_eq 0 "$status" "fasten's status"
  case $(wc -l <got) in
  1 | 2) ;;
  *) fail "the command got SIGTERM $(wc -l <got) times" ;;
  esac
}

test_the_lock_is_held_until_a_signalled_command_has_ended() {
  "$FASTEN" exclusive lock bash -c '
    trap "kill \$!; until [ -e finish ]; do sleep 0.01; done; touch finished; exit 0" TERM
    sleep 60 &
    touch ready
    wait $!' &
  local pid=$! waiter
  wait_for_file ready
  kill -TERM "$pid"
  # fasten waits for the command, which takes its time over the signal: a
  # second fasten waits until it has finished.
  "$FASTEN" exclusive -w 30 lock sh -c '[ -e finished ]' &
  waiter=$!
  wait_for_waiters lock 1
  touch finish
  wait "$waiter" || fail "got the lock before the command ended"
  wait "$pid"
}

test_ctrl_c_on_a_terminal_reaches_the_command_once() {
  python3 - "$FASTEN" <<'PY' || fail "see above"
import os, pty, sys, time
fasten = sys.argv[1]
pid, master = pty.fork()
if pid == 0:
    # A session of its own, with fasten and its command in the terminal's
    # foreground process group, as in an interactive shell.
    os.execv(fasten, [fasten, "exclusive", "lock", "bash", "-c",
        "n=0; trap 'n=$((n+1)); echo INT$n >> got' INT; touch ready; "
        "until [ -e go ]; do sleep 0.01; done; exit $n"])
def wait_for(path):
    deadline = time.time() + 20
    while not os.path.exists(path):
        if time.time() > deadline:
            sys.exit(f"no {path}")
        time.sleep(0.01)
wait_for("ready")
os.write(master, b"\x03")  # Ctrl-C: SIGINT to the whole foreground group
wait_for("got")
open("go", "w").close()
_, status = os.waitpid(pid, 0)
got = open("got").read().split() if os.path.exists("got") else []
if got != ["INT1"]:
    sys.exit(f"the command got {got}, expected ['INT1']")
if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 1:
    sys.exit(f"fasten ended with {status}, expected exit 1 (the command's)")
PY
}

test_fasten_ends_itself_by_the_signal_that_killed_the_command() {
  python3 - "$FASTEN" <<'PY' || fail "see above"
import subprocess, sys, signal
p = subprocess.run([sys.argv[1], "exclusive", "lock", "sh", "-c", "kill -INT $$"])
if p.returncode != -signal.SIGINT:
    sys.exit(f"fasten's own status was {p.returncode}, expected death by SIGINT")
PY
}

# closed_fds_run CLOSED OPTIONS...: runs fasten OPTIONS with the standard
# descriptors in CLOSED (digits) closed, the command recording where its own
# 0, 1 and 2 point in fds; fasten's status is in status.
closed_fds_run() {
  local closed=$1 fd redirect=()
  shift
  for fd in $(echo "$closed" | grep -o .); do
    redirect+=("$fd>&-")
  done
  # eval: bash takes a redirection only as written, not from a variable.
  eval '"$FASTEN" "$@" sh -c '\''echo OUT; echo ERR >&2; a=$(readlink /proc/$$/fd/0) b=$(readlink /proc/$$/fd/1) c=$(readlink /proc/$$/fd/2); printf "0 %s\\n1 %s\\n2 %s\\n" "$a" "$b" "$c" >fds'\'' '"${redirect[*]}"
}

test_a_lock_file_is_never_a_standard_descriptor_of_fasten_or_the_command() {
  local closed options fd
  for closed in 0 1 2 01 02 12 012; do
    for options in "exclusive -v" "read -v" "write -v -F" "exclusive -v -o" "exclusive -v --slots 2"; do
      echo precious >c.lock
      rm -f fds
      # shellcheck disable=SC2086
      closed_fds_run "$closed" $options c.lock || fail "fasten $options with $closed closed: status $?"
      expect_eq precious "$(cat c.lock)" "the lock file after fasten $options with $closed closed"
      for fd in 0 1 2; do
        case $closed in
        *$fd*) expect_eq "$fd /dev/null" "$(grep "^$fd " fds)" "descriptor $fd of the command ($options, $closed closed)" ;;
        esac
      done
    done
  done
}

test_a_closed_standard_descriptor_without_dev_null_is_71_and_the_lock_file_untouched() {
  [ "$(id -u)" -eq 0 ] || skip "needs root for a mount namespace without /dev/null"
  echo precious >c.lock
  local status=0
  # An empty /dev, as in a bare chroot: nothing can take descriptor 1.
  unshare -m sh -c 'mount -t tmpfs none /dev && exec "$0" exclusive c.lock sh -c "echo OUT" >&-' \
    "$FASTEN" 2>err || status=$?
  expect_eq 71 "$status" "status ($(cat err))"
  expect_contains "$(cat err)" "/dev/null cannot be opened"
  expect_eq precious "$(cat c.lock)" "the lock file"
}

test_a_closed_pipe_on_stderr_never_ends_fasten_or_changes_its_status() {
  python3 - "$FASTEN" <<'PY' || fail "see above"
import os, signal, subprocess, sys, time
fasten = sys.argv[1]
def wait_for(path):
    deadline = time.time() + 20
    while not os.path.exists(path):
        if time.time() > deadline:
            sys.exit(f"no {path}")
        time.sleep(0.01)
# Default SIGPIPE, as in a shell pipeline; the reader of stderr goes away
# before fasten says anything: the command still runs, and its status
# comes back.
r, w = os.pipe()
os.close(r)
p = subprocess.run([fasten, "exclusive", "-v", "lock", "sh", "-c",
                    "grep SigIgn /proc/self/status >sigign; exit 3"],
                   stderr=w, restore_signals=True)
os.close(w)
if p.returncode != 3:
    sys.exit(f"with no reader from the start: status {p.returncode}, expected 3")
ignored = int(open("sigign").read().split()[1], 16)
if ignored & (1 << (signal.SIGPIPE - 1)):
    sys.exit("the command started with SIGPIPE ignored")
# The reader goes away after the first line, as `2>&1 | head -n1` does.
p = subprocess.Popen([fasten, "exclusive", "-v", "lock", "sh", "-c",
                      "touch ready; until [ -e go ]; do sleep 0.01; done; exit 4"],
                     stderr=subprocess.PIPE, restore_signals=True)
p.stderr.readline()
p.stderr.close()
wait_for("ready")
open("go", "w").close()
if p.wait() != 4:
    sys.exit(f"with the reader gone after one line: status {p.returncode}, expected 4")
PY
}

# wait_until_gone PID WHAT: until process PID no longer runs.
wait_until_gone() {
  local deadline=$((SECONDS + 20))
  while kill -0 "$1" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$2 went on running without the lock"
    sleep 0.01
  done
}

test_nothing_the_command_started_outlives_a_killed_fasten_when_the_command_does_not_hold_the_lock() {
  local round
  # Rounds: the keeper's kill races the next holder's start.
  for round in 1 2 3 4 5 6 7 8; do
    rm -f ticker escaped orphan log overlap
    # The command's children: one in the background, one that left its
    # session (setsid), and an orphan whose parent has already ended.
    "$FASTEN" exclusive -o lock bash -c '
      bash -c "while :; do echo tick >>log; sleep 0.05; done" & echo $! >ticker
      setsid sleep 60 & echo $! >escaped
      (sleep 60 & echo $! >orphan) &
      wait' >/dev/null 2>&1 &
    local pid=$! process
    wait_for_file ticker
    wait_for_file escaped
    wait_for_file orphan
    wait_for_line log tick
    # The next holder, queued before the kill, looks for them as it starts.
    "$FASTEN" exclusive -w 60 lock sh -c '
      for process in ticker escaped orphan; do
        pid=$(cat $process)
        if kill -0 "$pid" 2>/dev/null && [ "$(cut -d" " -f3 /proc/$pid/stat)" != Z ]; then
          echo "$process" >>overlap
        fi
      done' &
    local next=$!
    wait_for_waiters lock 1
    kill -KILL "$pid"
    wait "$next"
    # Classic locks belong to fasten's process, which the kernel frees as
    # fasten dies, a moment before the keeper has killed the rest (the
    # manual says so).
    classic_locks || [ ! -e overlap ] || fail "round $round: the next holder ran beside the $(cat overlap | tr '\n' ' ')of the killed one"
    for process in ticker escaped orphan; do
      wait_until_gone "$(cat $process)" "the $process"
    done
  done
}

test_with_dash_o_what_the_command_leaves_running_goes_on_after_it_ends() {
  # flock(1)'s -o is for starting a daemon that must not hold the lock.
  "$FASTEN" exclusive -o lock sh -c 'setsid sleep 60 >/dev/null 2>&1 & echo $! >daemon'
  local daemon
  daemon=$(cat daemon)
  kill -0 "$daemon" || fail "the daemon did not outlive the command"
  expect_status 0 "$FASTEN" exclusive -n lock true
  kill "$daemon"
}

test_with_dash_o_signals_and_statuses_are_the_command_s() {
  expect_status 7 "$FASTEN" exclusive -o lock sh -c 'exit 7'
  expect_status 127 "$FASTEN" exclusive -o lock no-such-command-here
  # A command killed by a signal: fasten ends by the same signal.
  python3 - "$FASTEN" <<'PY' || fail "see above"
import subprocess, sys, signal
p = subprocess.run([sys.argv[1], "exclusive", "-o", "lock", "sh", "-c", "kill -TERM $$"])
if p.returncode != -signal.SIGTERM:
    sys.exit(f"fasten's own status was {p.returncode}, expected death by SIGTERM")
PY
  # A signal sent to fasten reaches the command, whose status comes back.
  passed_on USR1 -o
  passed_on ALRM -o
}

test_the_command_is_killed_with_fasten_when_it_does_not_hold_the_lock() {
  "$FASTEN" exclusive -o lock sh -c 'echo $$ > child; exec sleep 30' &
  local pid=$!
  wait_for_file child
  kill -KILL "$pid"
  local deadline=$((SECONDS + 10))
  while kill -0 "$(cat child)" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the command went on running without the lock"
    sleep 0.01
  done
}

run_suite
