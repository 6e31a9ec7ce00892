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

test_a_plain_write_lock_drains_slot_holders_and_readers_share_with_them() {
  hold a exclusive lock --slots 2
  expect_status 75 fasten write -n lock "$command_exe" exit 0
  expect_status 0 fasten read -n lock "$command_exe" exit 0
  expect_status 0 fasten write --slots 2 -n lock "$command_exe" exit 0
  release a
  expect_status 0 fasten write -n lock "$command_exe" exit 0
}

test_a_killed_slot_holders_slot_is_taken_again() {
  hold a exclusive lock --slots 2
  hold b exclusive lock --slots 2
  kill -KILL "$a_pid"
  wait "$a_pid" || true
  fasten exclusive --slots 2 -w 30 lock "$command_exe" env out FASTEN_SLOT
  expect_eq "FASTEN_SLOT=0" "$(cat out)"
  release b
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

run_suite
