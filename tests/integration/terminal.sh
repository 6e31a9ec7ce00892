#!/usr/bin/env bash
# The waiting line: on a terminal, after about a second of waiting, one line
# that says for what and for whom, rewritten in place and erased before the
# command writes; never on a pipe or with -q.
. "$(dirname "$0")/lib.sh"
ON_TERMINAL="python3 $(cd "$(dirname "$0")/../helpers" && pwd)/on-terminal.py"

# Background processes write to /dev/null: one that a failed test leaves
# behind must not keep the runner's output open.

# wait_for_updates FILE: polls until the waiting line in FILE has shown two
# different texts (counts of seconds), so it has been rewritten at least once
# and fasten has waited at least 2 s.
wait_for_updates() {
  local deadline=$((SECONDS + 30))
  until [ "$(tr '\r' '\n' <"$1" 2>/dev/null | grep -a '[0-9]' | sort -u | wc -l)" -ge 2 ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for the line to update in $1: $(cat -v "$1")"
    sleep 0.01
  done
}

test_on_a_terminal_a_wait_shows_one_line_that_updates_and_is_erased_before_the_command_runs() {
  hold holder exclusive lock
  : >transcript
  COLUMNS=400 $ON_TERMINAL "$PWD/transcript" "$FASTEN" exclusive -w 60 "$PWD/lock" echo ran >/dev/null 2>&1 &
  local waiter=$!
  wait_for_updates transcript
  local seen
  seen=$(cat transcript)
  expect_contains "$seen" $'\rfasten: waiting '
  expect_contains "$seen" " s of 60 s for $PWD/lock (exclusive); it is exclusive, held by pid "
  if classic_locks; then
    # A classic lock is the holding fasten's alone: its command holds nothing.
    expect_contains "$seen" "held by pid $holder_pid ("
  else
    expect_contains "$seen" "(sh -c touch \"\$1.held\"; read -r _ < \"\$1.fifo\" sh $PWD/holder), run by fasten pid $holder_pid"
  fi
  expect_contains "$seen" "; 1 waiting"
  # Rewritten in place: carriage returns, never a newline.
  expect_eq 0 "$(tr -cd '\n' <transcript | wc -c)" "newlines while waiting"
  release holder
  wait "$waiter"
  # The last thing before the command's output blanks the line.
  local tail
  tail=$(tr '\r' '\n' <transcript | tail -n 3 | cat -A)
  expect_contains "$tail" "$(printf '%*s' 60 '' | cat -A)"
  expect_eq "ran" "$(tr '\r' '\n' <transcript | tail -n 1 | tr -d '\n')" "the last line"
}

test_a_wait_for_one_of_several_locks_names_the_lock_waited_for_in_its_mode() {
  : >a
  : >b
  local first=a second=b
  [ "$(stat -c %i a)" -lt "$(stat -c %i b)" ] || first=b second=a
  hold holder exclusive "$second"
  : >transcript
  COLUMNS=400 $ON_TERMINAL "$PWD/transcript" "$FASTEN" write -w 60 --also read "$PWD/$second" "$PWD/$first" \
    echo ran >/dev/null 2>&1 &
  local waiter=$!
  wait_for_updates transcript
  expect_contains "$(cat transcript)" " for $PWD/$second (read); it is exclusive, held by pid "
  release holder
  wait "$waiter"
  expect_eq "ran" "$(tr '\r' '\n' <transcript | tail -n 1 | tr -d '\n')" "the last line"
}

test_a_wait_for_a_descriptor_names_the_descriptor() {
  classic_locks && return 0 # --fd needs locks that belong to open files
  hold holder exclusive lock
  : >transcript
  COLUMNS=400 $ON_TERMINAL "$PWD/transcript" sh -c 'exec 9>>"$1"; exec "$2" exclusive --fd 9' sh \
    "$PWD/lock" "$FASTEN" >/dev/null 2>&1 &
  local waiter=$!
  wait_for_updates transcript
  expect_contains "$(cat transcript)" " for descriptor 9 (exclusive); it is exclusive, held by pid "
  expect_contains "$(cat transcript)" ", run by fasten pid $holder_pid"
  release holder
  wait "$waiter"
}

test_the_line_never_wraps_on_a_narrow_terminal() {
  hold holder exclusive lock
  : >transcript
  COLUMNS=40 $ON_TERMINAL "$PWD/transcript" "$FASTEN" exclusive "$PWD/lock" true >/dev/null 2>&1 &
  local waiter=$!
  wait_for_updates transcript
  release holder
  wait "$waiter"
  local longest
  longest=$(widest_line transcript)
  [ "$longest" -le 39 ] || fail "a line of $longest columns on a terminal of 40: $(cat -A transcript)"
}

# last_line TRANSCRIPT: the waiting line as last drawn before the lock was
# released (the last carriage-return segment with text in it).
last_line() {
  tr '\r' '\n' <"$1" | grep -a 'waiting' | tail -n 1 | sed 's/ *$//'
}

# widest_line TRANSCRIPT: the most display columns any drawn line takes (a
# CJK character takes 2).
widest_line() {
  python3 -c '
import sys, unicodedata
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
print(max(sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)
          for line in text.replace("\r", "\n").split("\n")))' "$1"
}

# shows_the_holders_command_at COLUMNS DIRECTORY: a wait at COLUMNS for a lock
# in DIRECTORY (long, or CJK) names the command the holding fasten runs,
# the mode and the waiting count on one line that fits.
shows_the_holders_command_at() {
  local columns=$1 dir=$2
  mkdir -p "$dir"
  hold holder exclusive "$dir/lock"
  local command_pid
  command_pid=$(pgrep -P "$holder_pid" -x sh)
  : >transcript
  COLUMNS=$columns $ON_TERMINAL "$PWD/transcript" "$FASTEN" exclusive -w 600 "$PWD/$dir/lock" true \
    >/dev/null 2>&1 &
  local waiter=$!
  wait_for_updates transcript
  # The line as drawn while the holder holds, up to the last update that is
  # whole (the next one's carriage return has come): the hand-off redraws
  # it in passing, from a /proc/locks read while the bytes change hands.
  python3 -c 'import sys; t = open(sys.argv[1], "rb").read(); open(sys.argv[2], "wb").write(t[:t.rfind(b"\r")])' \
    transcript held
  release holder
  wait "$waiter"
  local seen widest
  seen=$(last_line held)
  widest=$(widest_line transcript)
  [ "$widest" -lt "$columns" ] || fail "a line of $widest columns at $columns: $(cat -A transcript)"
  expect_contains "$seen" "exclusive"
  expect_contains "$seen" "; 1 waiting"
  # A classic lock is the holding fasten's alone: its command holds nothing,
  # and the line names the fasten.
  classic_locks && return 0
  expect_contains "$seen" "sh -c"
  case "$seen" in
  *"$FASTEN"*) fail "the holding fasten's own command line at $columns columns: $seen" ;;
  esac
  if [ "$columns" -ge 100 ]; then
    expect_contains "$seen" "pid $command_pid (sh -c"
  fi
}

test_a_long_path_at_100_columns_still_shows_the_holders_command_and_the_waiting_count() {
  shows_the_holders_command_at 100 "a-directory-with-a-name-long-enough-to-push-the-rest-of-the-line/off-the-edge"
}

test_a_long_path_at_40_columns_still_shows_the_mode_the_holders_command_and_the_waiting_count() {
  shows_the_holders_command_at 40 "a-directory-with-a-name-long-enough/to-push-the-rest-off"
}

test_a_cjk_path_is_measured_in_display_columns_at_40() {
  shows_the_holders_command_at 40 "鎖のディレクトリ/とても長い名前のディレクトリ"
}

test_a_cjk_path_is_measured_in_display_columns_at_100() {
  shows_the_holders_command_at 100 "鎖のディレクトリ/とても長い名前のディレクトリ/もっと長い名前のディレクトリです"
}

test_after_a_resize_from_100_to_40_columns_the_line_fits_the_new_width() {
  hold holder exclusive lock
  : >transcript
  COLUMNS=100 RESIZE_COLUMNS=40 $ON_TERMINAL "$PWD/transcript" "$FASTEN" exclusive "$PWD/lock" true \
    >/dev/null 2>&1 &
  local waiter=$!
  wait_for_updates transcript
  local before
  before=$(wc -c <transcript)
  kill -USR1 "$waiter"
  # Two updates after the resize, so at least one was drawn at the new width.
  local deadline=$((SECONDS + 30))
  until [ "$(tail -c +$((before + 1)) transcript | tr '\r' '\n' | grep -a '[0-9]' | sort -u | wc -l)" -ge 2 ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "no update after the resize: $(cat -A transcript)"
    sleep 0.01
  done
  release holder
  wait "$waiter"
  tail -c +$((before + 1)) transcript | tr '\r' '\n' | grep -a '[0-9]' | tail -n 1 >after
  local widest
  widest=$(widest_line after)
  [ "$widest" -lt 40 ] || fail "a line of $widest columns after a resize to 40: $(cat -A after)"
}

# ends_blank TRANSCRIPT: the last thing written blanks the line (a carriage
# return, only spaces, a carriage return).
ends_blank() {
  local last
  last=$(tail -c 200 "$1" | tr '\r' '\n' | grep -a . | tail -n 1)
  [ -z "$(printf '%s' "$last" | tr -d ' ')" ] && [ "$(tail -c 1 "$1")" = $'\r' ] ||
    fail "the line is left on screen: $(cat -A "$1")"
}

# ended_by_signal SIGNAL STATUS [COLUMNS]: a waiting fasten that SIGNAL ends
# blanks its line first, and still dies by the signal (on-terminal.py exits
# with -SIGNAL modulo 256).
ended_by_signal() {
  hold holder exclusive lock
  : >transcript
  COLUMNS=${3:-100} $ON_TERMINAL "$PWD/transcript" "$FASTEN" exclusive "$PWD/lock" true >/dev/null 2>&1 &
  local waiter=$!
  wait_for_updates transcript
  kill "-$1" "$(pgrep -P "$waiter")"
  expect_status "$2" wait "$waiter"
  ends_blank transcript
  release holder
}

test_ctrl_c_blanks_the_line_and_fasten_still_dies_by_sigint() {
  ended_by_signal INT 254
}

test_kill_term_blanks_the_line_at_40_columns_and_fasten_still_dies_by_sigterm() {
  ended_by_signal TERM 241 40
}

test_a_background_job_draws_no_line_over_the_foreground() {
  hold holder exclusive lock
  : >transcript
  # With job control (set -m) the shell puts the reader in a process group
  # of its own, in the background, and keeps the terminal for the writer,
  # which starts after it and so shows its line later.
  $ON_TERMINAL "$PWD/transcript" sh -c 'set -m; "$1" read "$2" true & "$1" exclusive "$2" true; wait' sh \
    "$FASTEN" "$PWD/lock" >/dev/null 2>&1 &
  local waiter=$!
  wait_for_updates transcript
  release holder
  wait "$waiter"
  expect_contains "$(cat transcript)" "(exclusive)"
  case "$(cat transcript)" in
  *"(read)"*) fail "the background job drew its line: $(cat -A transcript)" ;;
  esac
}

test_nothing_is_shown_on_a_pipe_or_with_quiet() {
  hold holder exclusive lock
  : >quiet.transcript
  "$FASTEN" exclusive "$PWD/lock" echo ran 2>pipe.err >/dev/null &
  local piped=$!
  $ON_TERMINAL "$PWD/quiet.transcript" "$FASTEN" exclusive -q "$PWD/lock" echo ran >/dev/null 2>&1 &
  local quiet=$!
  wait_for_waiters lock 2
  # A third waiter on a terminal, started last: once it has rewritten its
  # line, the other two have waited longer than it takes to show one.
  : >transcript
  $ON_TERMINAL "$PWD/transcript" "$FASTEN" exclusive "$PWD/lock" true >/dev/null 2>&1 &
  local shown=$!
  wait_for_updates transcript
  release holder
  wait "$piped" "$quiet" "$shown"
  expect_eq "" "$(cat pipe.err)" "stderr on a pipe"
  expect_eq "ran" "$(tr -d '\r\n' <quiet.transcript)" "the terminal with -q"
}

test_verbose_names_the_holder_that_was_in_the_way_when_it_gives_up() {
  hold holder exclusive lock
  expect_status 75 "$FASTEN" exclusive -n -v lock true 2>err
  expect_contains "$(cat err)" "gave up on lock (exclusive) after"
  # The hold is named by its command, with the holding fasten folded in
  # (with classic locks, the fasten alone holds it).
  expect_contains "$(cat err)" "; it is exclusive, held by pid "
  expect_contains "$(cat err)" "pid $holder_pid"
  expect_status 75 "$FASTEN" read -w 0.01 -v lock true 2>err
  expect_contains "$(tail -n 1 err)" "; it is exclusive, held by pid "
  expect_contains "$(tail -n 1 err)" "pid $holder_pid"
  release holder
}

# Ctrl-Z while the line shows: fasten blanks it before it stops, and on
# SIGCONT (fg) draws again at once the line it showed. A job-control shell on the terminal stops and resumes it; the
# stop lasts over a second, so that an update would show a later count.
test_a_stopped_wait_blanks_its_line_and_draws_it_again_when_continued() {
  hold holder exclusive lock
  : >transcript
  COLUMNS=200 $ON_TERMINAL "$PWD/transcript" bash -mc '"$0" exclusive -w 60 "$1" echo ran; echo "[stopped $?]"
    until [ -e "$2" ]; do sleep 0.01; done; fg' "$FASTEN" "$PWD/lock" "$PWD/gate" >/dev/null 2>&1 &
  local terminal=$!
  wait_for_line transcript "fasten: waiting "
  local waiter
  waiter=$(pgrep -f -- "exclusive -w 60 $PWD/lock echo ran")
  kill -TSTP "$waiter"
  wait_for_line transcript "[stopped 148]"
  local stopped
  stopped=$(now_ms)
  until [ $(($(now_ms) - stopped)) -ge 1500 ]; do sleep 0.05; done
  touch gate
  release holder
  wait "$terminal"
  python3 - transcript <<'PY' || fail "the transcript: $(cat -A transcript)"
import re
import sys
text = open(sys.argv[1], encoding="utf-8", errors="replace", newline="").read()
before, _, after = text.partition("Stopped")
chunks = before.split("\r")
drawn = [c for c in chunks if c.startswith("fasten: waiting ")]
assert drawn, "no line before the stop"
# The last thing before the shell's report: the line blanked.
assert re.search(r"\r {20,}\r\n?\[1\]\+ +Stopped", text), "not blanked"
# After fg's echo of the command: the same line drawn again, though an
# update would show a later count.
resumed = after.split("echo ran\n", 1)[1].split("\r")
assert drawn[-1] in resumed, (drawn[-1], resumed)
PY
}

run_suite
