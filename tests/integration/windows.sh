#!/usr/bin/env bash
# The Windows build, under Wine: fasten.exe locks and runs test-command.exe
# (tests/helpers/test-command.cc; there is no POSIX shell on Windows) as it
# would on Windows. scripts/test-windows sets up Wine and runs this.
#
# Environment: FASTEN and TEST_COMMAND, the Windows programs; WINE, the
# command that runs them (default: wine).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
: "${TEST_COMMAND:?TEST_COMMAND must name test-command.exe}"
wine=${WINE:-wine}
# Wine maps the Unix root to drive Z:. A Windows path, so that CreateProcessW
# finds the program as it would on Windows.
command_exe="Z:${TEST_COMMAND//\//\\}"

fasten() {
  "$wine" "$FASTEN" "$@"
}

# Wine takes longer than Linux to start a process: generous windows.
# hold NAME MODE LOCK [FASTEN_OPTIONS...]: fasten.exe holds LOCK in MODE until
# `release NAME`; returns once the lock is held. Its pid is in $NAME_pid.
hold() {
  local name=$1 mode=$2 lock=$3
  shift 3
  "$wine" "$FASTEN" "$mode" "$@" "$lock" "$command_exe" hold "$name.held" "$name.release" \
    >/dev/null 2>"$name.err" &
  eval "${name}_pid=$!"
  wait_for_file "$name.held" 60
}

release() {
  touch "$1.release"
  wait "$(eval echo "\$${1}_pid")"
}

test_an_exclusive_holder_keeps_out_writers_and_readers_until_it_ends() {
  hold holder exclusive lock
  expect_status 75 fasten exclusive -n lock "$command_exe" exit 0
  expect_status 75 fasten read -n lock "$command_exe" exit 0
  expect_status 75 fasten write -n lock "$command_exe" exit 0
  release holder
  expect_status 0 fasten exclusive -n lock "$command_exe" exit 0
}

test_readers_share_the_lock_and_keep_a_writer_out() {
  hold reader read lock
  expect_status 0 fasten read -n lock "$command_exe" exit 0
  expect_status 75 fasten write -n lock "$command_exe" exit 0
  release reader
  expect_status 0 fasten write -n lock "$command_exe" exit 0
}

test_a_timeout_gives_up_after_about_that_long_with_the_conflict_status() {
  hold holder exclusive lock
  local start elapsed
  start=$(now_ms)
  expect_status 75 fasten write -w 0.8 lock "$command_exe" exit 0
  elapsed=$(($(now_ms) - start))
  [ "$elapsed" -ge 800 ] || fail "gave up after $elapsed ms"
  [ "$elapsed" -lt 8000 ] || fail "gave up only after $elapsed ms"
  expect_status 9 fasten read -n -E 9 lock "$command_exe" exit 0
  release holder
}

test_a_waiter_gets_the_lock_once_the_holder_ends() {
  hold holder exclusive lock
  fasten exclusive -w 60 lock "$command_exe" args got waited &
  local waiter=$!
  sleep 1
  [ ! -e got ] || fail "the waiter ran while the lock was held"
  release holder
  expect_status 0 wait "$waiter"
  expect_eq waited "$(cat got)"
}

test_a_holder_killed_with_sigkill_frees_the_lock_and_its_command_dies_too() {
  hold holder exclusive lock
  kill -KILL "$holder_pid"
  wait "$holder_pid" || true
  # The command was in fasten's job object: it must be gone as well, and so
  # never see the release file.
  expect_status 0 fasten exclusive -w 30 lock "$command_exe" exit 0
  touch holder.release
  sleep 1
  [ ! -e holder.release.seen ] || fail "the command outlived fasten"
}

test_the_command_exit_status_comes_back() {
  expect_status 0 fasten exclusive lock "$command_exe" exit 0
  expect_status 3 fasten exclusive lock "$command_exe" exit 3
  expect_status 255 fasten read lock "$command_exe" exit 255
}

# Options are -x and --xx on every platform: a rooted path is a LOCK, and a
# word after LOCK is the command's, /c included.
test_a_lock_path_that_begins_with_a_slash_is_a_lock_not_an_option() {
  local lock=$PWD/w.lock
  expect_status 3 fasten exclusive "$lock" -- "$command_exe" exit 3
  [ -e "$lock" ] || fail "no lock file at $lock"
  expect_status 3 fasten read "$lock" -- cmd /c "exit 3"
  expect_status 4 fasten write -w 5 "$lock" -c 'exit 4'
}

test_arguments_with_spaces_quotes_and_backslashes_pass_through_intact() {
  fasten write lock "$command_exe" args out 'a b' 'say "hi"' '' 'back\slash' 'trail\' 'x\"y' '	tab' -n -w 3
  printf '%s\n' 'a b' 'say "hi"' '' 'back\slash' 'trail\' 'x\"y' '	tab' -n -w 3 >want
  cmp want out || fail "arguments changed: $(cat -A out)"
}

test_the_command_gets_fasten_lock_and_fasten_mode() {
  fasten write lock "$command_exe" env out FASTEN_LOCK FASTEN_MODE
  expect_eq "FASTEN_LOCK=lock
FASTEN_MODE=write" "$(cat out)"
}

test_three_slots_let_three_holders_in_and_keep_a_fourth_out_until_one_ends() {
  hold a exclusive lock --slots 3
  hold b exclusive lock --slots 3
  hold c exclusive lock --slots 3
  expect_status 75 fasten exclusive --slots 3 -n lock "$command_exe" exit 0
  release b
  fasten exclusive --slots 3 -n lock "$command_exe" env out FASTEN_SLOT
  expect_eq "FASTEN_SLOT=1" "$(cat out)"
  release a
  release c
}

test_dash_c_runs_the_string_with_cmd() {
  expect_status 4 fasten exclusive lock -c 'exit 4'
  local out
  out=$(fasten exclusive lock -c 'echo one "two  three" & echo four')
  expect_eq 'one "two  three" 
four' "$(printf '%s' "$out" | tr -d '\r')"
}

test_a_missing_command_is_127_and_a_missing_directory_66() {
  local err
  err=$(fasten exclusive lock no-such-command-here 2>&1 >/dev/null) && fail "it ran"
  expect_status 127 fasten exclusive lock no-such-command-here
  expect_contains "$err" "command not found"
  err=$(fasten exclusive no-such-dir/lock "$command_exe" exit 0 2>&1 >/dev/null) || true
  expect_status 66 fasten exclusive no-such-dir/lock "$command_exe" exit 0
  expect_contains "$err" "no-such-dir"
}

test_what_windows_cannot_do_is_a_usage_error() {
  local err
  for args in "exclusive --fd 9" "unlock --fd 9" "exclusive -F lock x" "exclusive --mode 0644 lock x" \
    "status lock"; do
    # shellcheck disable=SC2086
    err=$(fasten $args 2>&1 >/dev/null) && fail "accepted: $args"
    # shellcheck disable=SC2086
    expect_status 64 fasten $args
    expect_contains "$err" "not available on this system"
  done
  [ ! -e lock ] || fail "a refused command created the lock file"
}

test_the_lock_file_keeps_its_bytes_and_others_can_read_it_while_it_is_held() {
  printf 'precious\ndata\n' >data
  hold holder exclusive data
  # Windows locks are mandatory: only fasten's two bytes far past the end are
  # locked, so another Windows program reads the contents.
  local seen
  seen=$("$wine" cmd /c type data | tr -d '\r')
  expect_eq "precious
data" "$seen"
  release holder
  expect_eq "precious
data" "$(cat data)"
}

# Counting semaphores. Each command logs "start NAME SLOT" and "end NAME SLOT"
# to ./log (test-command log, one line at a time) and holds until
# NAME.release exists. A start is logged after fasten took the lock and an
# end before it lets go, so what the log shows running at once did run at once.

# log_holder NAME LOCK FASTEN_ARGS...: starts `fasten FASTEN_ARGS LOCK
# test-command log log NAME` in the background; its pid is in $NAME_pid.
log_holder() {
  local name=$1 lock=$2
  shift 2
  "$wine" "$FASTEN" "$@" "$lock" "$command_exe" log log "$name" >/dev/null 2>"$name.err" &
  eval "${name}_pid=$!"
}

# finish NAME...: releases each holder and waits for it, which must succeed.
finish() {
  local name
  for name in "$@"; do
    touch "$name.release"
  done
  for name in "$@"; do
    wait "$(eval echo "\$${name}_pid")" || fail "$name failed: $(cat "$name.err")"
  done
}

# running: the names of the commands that logged their start and not their end.
running() {
  awk '$1 == "start" { run[$2] = 1 } $1 == "end" { delete run[$2] } END { for (n in run) print n }' \
    log 2>/dev/null | sort
}

# slot_of NAME: the slot NAME's command logged at its start.
slot_of() {
  awk -v name="$1" '$1 == "start" && $2 == name { print $3 }' log
}

# line_of WHAT NAME: the line number of NAME's "start" or "end" in the log.
line_of() {
  grep -n "^$1 $2 " log | cut -d: -f1
}

# wait_for_running N [SECONDS]: until exactly N commands run; more is a failure.
wait_for_running() {
  local deadline=$((SECONDS + ${2:-60})) count
  while count=$(running | wc -l) && [ "$count" -ne "$1" ]; do
    [ "$count" -lt "$1" ] || fail "$count commands run at once, more than $1: $(running | tr '\n' ' ')"
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for $1 running commands ($count run)"
    sleep 0.05
  done
}

# check_slot_log N: in the whole log, never more than N commands at once,
# each in a slot from 0 to N-1 that nobody else holds. Prints the most that
# ran at once.
check_slot_log() {
  awk -v n="$1" '
    $1 == "start" {
      if ($3 !~ /^[0-9]+$/ || $3 + 0 >= n) { bad = bad "; " $2 " got slot " $3 }
      else if ($3 in holder) { bad = bad "; " $2 " took slot " $3 " from " holder[$3] }
      holder[$3] = $2
      if (++now > most) { most = now }
    }
    $1 == "end" { if (holder[$3] == $2) { delete holder[$3] } now-- }
    END { if (bad != "") { print substr(bad, 3); exit 1 } print most }' log
}

# slots_in_rounds N: 3N commands under --slots N, each round released once N
# run. Never more than N at once, and every slot used in every round.
slots_in_rounds() {
  local n=$1 i names name most
  for i in $(seq $((3 * n))); do
    log_holder "h$i" lock exclusive --slots "$n" -w 300
  done
  for _ in 1 2 3; do
    wait_for_running "$n" 240
    names=$(running)
    for name in $names; do
      touch "$name.release"
    done
    for name in $names; do
      wait_for_line log "end $name " 60
    done
  done
  for i in $(seq $((3 * n))); do
    wait "$(eval echo "\$h${i}_pid")" || fail "h$i failed: $(cat "h$i.err")"
  done
  expect_eq $((6 * n)) "$(wc -l <log)" "lines logged"
  most=$(check_slot_log "$n") || fail "$most"
  expect_eq "$n" "$most" "most commands at once"
}

test_one_slot_is_the_plain_lock_and_its_holder_gets_slot_0() {
  slots_in_rounds 1
  expect_eq "0 0 0" "$(slot_of h1) $(slot_of h2) $(slot_of h3)"
}

test_three_slots_hold_three_commands_at_once_each_in_a_slot_of_its_own() {
  slots_in_rounds 3
}

test_sixty_four_slots_hold_sixty_four_commands_at_once_each_in_a_slot_of_its_own() {
  slots_in_rounds 64
}

test_readers_share_the_lock_with_slot_holders_and_a_writer_without_slots_does_not() {
  log_holder a lock exclusive --slots 3
  wait_for_running 1
  expect_status 0 fasten read -n lock "$command_exe" exit 0
  expect_status 75 fasten write -n lock "$command_exe" exit 0
  expect_status 0 fasten exclusive --slots 3 -n lock "$command_exe" exit 0
  finish a
}

test_a_plain_write_waits_for_the_slot_holders_and_those_who_come_after_it_wait_for_it() {
  log_holder a lock exclusive --slots 3
  log_holder b lock exclusive --slots 3
  wait_for_running 2
  log_holder w lock write -v -w 120
  wait_for_line w.err "waiting"
  # A slot is free: c takes it and then waits behind the writer for the lock.
  # That c waits at all shows the writer in the turnstile.
  log_holder c lock exclusive -v --slots 3 -w 120
  wait_for_line c.err "waiting"
  touch a.release b.release
  wait_for_line log "start w " 60
  [ -z "$(line_of start c)" ] || fail "c started while the writer held the lock: $(cat log)"
  finish w
  wait_for_line log "start c " 60
  finish a b c
  local end
  for end in "$(line_of end a)" "$(line_of end b)"; do
    [ "$(line_of start w)" -gt "$end" ] || fail "the writer started before the slot holders ended: $(cat log)"
  done
  [ "$(line_of start c)" -gt "$(line_of end w)" ] || fail "c started before the writer ended: $(cat log)"
  expect_eq - "$(slot_of w)" "FASTEN_SLOT of a plain write"
}

test_a_killed_slot_holders_slot_goes_to_the_waiter() {
  log_holder a lock exclusive --slots 2
  log_holder b lock exclusive --slots 2
  wait_for_running 2
  log_holder c lock exclusive -v --slots 2 -w 120
  wait_for_line c.err "waiting"
  kill -KILL "$a_pid"
  wait "$a_pid" || true
  wait_for_line log "start c " 60
  expect_eq "$(slot_of a)" "$(slot_of c)" "the slot c got"
  finish b c
}

test_a_slot_waiter_that_times_out_leaves_the_queue_and_the_slots_to_the_next() {
  log_holder a lock exclusive --slots 2
  log_holder b lock exclusive --slots 2
  wait_for_running 2
  expect_status 75 fasten exclusive --slots 2 -w 0.5 lock "$command_exe" exit 0
  log_holder c lock exclusive -v --slots 2 -w 120
  wait_for_line c.err "waiting"
  finish b
  wait_for_line log "start c " 60
  expect_eq "$(slot_of b)" "$(slot_of c)" "the slot c got"
  finish a c
  expect_status 0 fasten write -n lock "$command_exe" exit 0
}

run_suite
