#!/usr/bin/env bash
# Nested holds: a command run by fasten that runs fasten again on the same
# lock re-enters its ancestor's hold, where an inherited open file proves
# it, and a request that would wait for its own ancestor is refused at once
# (status 65). Each nested fasten that must not get in has a timeout, or runs
# under timeout(1), so that a wait for itself fails the test instead of
# hanging it.
. "$(dirname "$0")/lib.sh"

# The data byte and the nested byte of the protocol (ARCHITECTURE.md).
k_nested=$(((1 << 62) + 3))

# nested OUTER_MODE INNER_MODE [INNER_OPTIONS...] -- SCRIPT: runs fasten
# OUTER_MODE on lock, whose command runs fasten INNER_MODE on lock again
# with SCRIPT (sh -c, with fasten as $0 and lock as $1) as its command; the
# inner status is in inner.status.
nested() {
  local outer=$1 inner=$2
  shift 2
  local options=()
  while [ "$1" != -- ]; do
    options+=("$1")
    shift
  done
  shift
  "$FASTEN" "$outer" "$PWD/lock" sh -c '"$0" "$@"; echo $? >inner.status' \
    "$FASTEN" "$inner" "${options[@]}" "$PWD/lock" sh -c "$1" "$FASTEN" "$PWD/lock"
}

if classic_locks; then
  # Classic locks belong to the process: a child's descriptor proves
  # nothing, so a nested request is refused at once instead of re-entering.
  test_a_nested_exclusive_lock_is_refused_at_once_with_classic_locks() {
    nested exclusive exclusive -- 'touch ran' 2>err
    expect_eq 65 "$(cat inner.status)" "the nested fasten's status"
    [ ! -e ran ] || fail "the nested command ran"
    expect_contains "$(cat err)" "classic fcntl locks"
  }
  run_suite
  exit
fi

# inside OUTER_MODE INNER_MODE [INNER_OPTIONS...]: starts `nested` in the
# background with a command that holds until `leave`; returns once the
# nested command runs.
inside() {
  mkfifo gate
  nested "$@" -- 'touch inner.held; read -r _ <gate' 2>nested.err &
  nested_pid=$!
  wait_for_file inner.held
}

# leave: lets the command started by `inside` end; both fastens must succeed.
leave() {
  echo >gate
  wait "$nested_pid" || fail "outer: $(cat nested.err)"
  expect_eq 0 "$(cat inner.status)" "the nested fasten's status"
}

test_nested_exclusive_in_exclusive_re_enters_and_runs_within_the_outer_hold() {
  # Without re-entry the inner fasten waits for its own ancestor (here
  # without a timeout: the nested command never runs, and inside fails).
  inside exclusive exclusive
  # Any other fasten is still kept out while the nested command runs.
  expect_status 75 "$FASTEN" exclusive -n "$PWD/lock" true
  expect_status 75 "$FASTEN" read -n "$PWD/lock" true
  leave
  expect_status 0 "$FASTEN" exclusive -n "$PWD/lock" true
}

test_nested_read_in_read_re_enters() {
  inside read read
  expect_status 75 "$FASTEN" write -n "$PWD/lock" true
  expect_status 0 "$FASTEN" read -n "$PWD/lock" true
  leave
}

test_nested_read_in_write_re_enters_and_keeps_others_out() {
  inside write read
  expect_status 75 "$FASTEN" exclusive -n "$PWD/lock" true
  expect_status 75 "$FASTEN" read -n "$PWD/lock" true
  leave
}

test_nested_exclusive_in_write_and_write_in_exclusive_re_enter() {
  nested write exclusive -w 30 -- true 2>err || fail "$(cat err)"
  expect_eq 0 "$(cat inner.status)"
  nested exclusive write -w 30 -- true 2>err || fail "$(cat err)"
  expect_eq 0 "$(cat inner.status)"
}

test_the_nested_command_gets_the_lock_s_environment_and_status_sees_one_exclusive_hold() {
  nested exclusive exclusive -w 30 -- 'echo "$FASTEN_LOCK $FASTEN_MODE" >env
    "$0" status --json "$1" >status.json' 2>err || fail "$(cat err)"
  expect_eq "$PWD/lock exclusive" "$(cat env)"
  expect_contains "$(tr -d '\n' <status.json)" '"state": "exclusive"'
  expect_contains "$(tr -d '\n' <status.json)" '"holds": 1'
}

# The re-entered hold is the command's as any hold is: it inherits the
# descriptor and runs as the nested fasten's child, under no keeper that
# would kill it with that fasten (the keeper is for commands that do not
# hold their lock).
test_a_re_entered_command_holds_its_hold_itself_under_no_keeper() {
  mkfifo gate
  "$FASTEN" exclusive "$PWD/lock" sh -c '"$0" exclusive "$1" sh -c "echo \$\$ >cmd.new && mv cmd.new cmd.pid; read -r _ <gate"' \
    "$FASTEN" "$PWD/lock" &
  local outer=$!
  wait_for_file cmd.pid
  local parent name
  parent=$(awk '{ print $4 }' "/proc/$(cat cmd.pid)/stat")
  name=$(cat "/proc/$parent/comm")
  echo >gate
  wait "$outer" || fail "the outer fasten failed"
  expect_eq fasten "$name" "the nested command's parent"
}

test_a_nested_read_gets_in_while_a_writer_waits_for_the_outer_reader() {
  # The old deadlock: writers are preferred, so a nested reader queued
  # behind the writer, which waits for the outer reader, which waits for it.
  mkfifo gate
  "$FASTEN" read "$PWD/lock" sh -c 'touch outer.held; read -r _ <gate
    "$0" read -w 30 "$1" true; echo $? >inner.status' "$FASTEN" "$PWD/lock" 2>outer.err &
  local outer=$!
  wait_for_file outer.held
  "$FASTEN" write "$PWD/lock" touch writer.ran 2>writer.err &
  local writer=$!
  wait_for_waiters lock 1
  echo >gate
  wait "$outer" || fail "outer: $(cat outer.err)"
  expect_eq 0 "$(cat inner.status)" "the nested reader's status"
  wait "$writer" || fail "writer: $(cat writer.err)"
  [ -e writer.ran ] || fail "the writer did not run"
}

test_an_upgrade_is_refused_at_once_naming_the_ancestor() {
  # No timeout: a wait for itself would last until timeout(1) ends it.
  timeout 120 "$FASTEN" read "$PWD/lock" sh -c '"$0" write "$1" touch ran; echo $? >inner.status' \
    "$FASTEN" "$PWD/lock" 2>err
  expect_eq 65 "$(cat inner.status)" "the nested writer's status"
  [ ! -e ran ] || fail "the nested command ran"
  local pid
  pid=$(sed -n 's/.*: pid \([0-9]*\) (.*), an ancestor of this fasten, holds it shared.*/\1/p' err)
  [ -n "$pid" ] || fail "no ancestor named in: $(cat err)"
  expect_eq 1 "$(wc -l <err)" "lines on stderr"
  expect_contains "$(cat err)" "fasten: cannot lock $PWD/lock (write): pid $pid ("
  expect_contains "$(cat err)" "a shared hold cannot be upgraded"
  # exclusive inside read is an upgrade too
  timeout 120 "$FASTEN" read "$PWD/lock" sh -c '"$0" exclusive "$1" true; echo $? >inner.status' \
    "$FASTEN" "$PWD/lock" 2>err
  expect_eq 65 "$(cat inner.status)"
}

test_the_refusal_escapes_the_ancestor_s_command_line() {
  timeout 120 "$FASTEN" read "$PWD/lock" sh -c '"$0" write "$1" true; echo $? >inner.status' \
    "$FASTEN" "$PWD/lock" "$(printf 'evil\033]0;title\007')" 2>err
  expect_eq 65 "$(cat inner.status)"
  if grep -q "$(printf '\033')" err; then fail "a raw escape reached stderr"; fi
  expect_contains "$(cat err)" 'evil\e]0;title\a'
}

test_a_nested_request_with_o_is_refused_at_once() {
  # The inner -o: its command would not hold the lock; it cannot re-enter.
  timeout 120 "$FASTEN" exclusive "$PWD/lock" sh -c '"$0" exclusive -o "$1" touch ran; echo $? >inner.status' \
    "$FASTEN" "$PWD/lock" 2>err
  expect_eq 65 "$(cat inner.status)"
  expect_contains "$(cat err)" "with -o this fasten cannot re-enter that hold"
  [ ! -e ran ] || fail "the nested command ran"
  # The outer -o: the command inherits no descriptor to prove the hold with.
  timeout 120 "$FASTEN" exclusive -o "$PWD/lock" sh -c '"$0" read "$1" touch ran; echo $? >inner.status' \
    "$FASTEN" "$PWD/lock" 2>err
  expect_eq 65 "$(cat inner.status)"
  expect_contains "$(cat err)" "holds it exclusive and waits for this fasten to end"
  [ ! -e ran ] || fail "the nested command ran"
}

test_a_nested_read_with_o_inside_a_read_hold_takes_the_lock_as_a_reader() {
  nested read read -o -w 30 -- true 2>err || fail "$(cat err)"
  expect_eq 0 "$(cat inner.status)"
}

test_a_sibling_with_the_lock_s_environment_does_not_get_in() {
  hold holder exclusive "$PWD/lock"
  # The variables a nested fasten would see, and a descriptor on the same
  # file whose open file holds nothing: no proof. It is no descendant of the
  # holder, so it waits as any process does, until its timeout.
  exec 7<lock
  expect_status 75 env FASTEN_LOCK="$PWD/lock" FASTEN_MODE=exclusive \
    "$FASTEN" exclusive -w 0.3 "$PWD/lock" touch ran 2>err
  exec 7<&-
  release holder
  [ ! -e ran ] || fail "the sibling's command ran"
  if grep -q ancestor err; then fail "a holder that is no ancestor called one: $(cat err)"; fi
}

test_a_descendant_that_closed_the_inherited_descriptor_does_not_get_in() {
  # Every descriptor above 2 closed: the environment is left, the proof not.
  timeout 120 "$FASTEN" exclusive "$PWD/lock" sh -c \
    'for fd in 3 4 5 6 7 8 9; do eval "exec $fd<&-"; done
     "$0" exclusive "$1" touch ran; echo $? >inner.status' "$FASTEN" "$PWD/lock" 2>err
  expect_eq 65 "$(cat inner.status)"
  expect_contains "$(cat err)" "no descriptor of this fasten's holds the lock"
  [ ! -e ran ] || fail "the nested command ran"
}

# start_outer_with_a_nested_hold: an outer exclusive fasten whose command
# starts a nested fasten in the background and ends as soon as the nested
# command runs (until the test writes to the FIFO gate); $outer is its pid.
# Returns once the outer fasten, its command over, waits for the nested
# hold to end: a waiting request on the nested byte in /proc/locks.
start_outer_with_a_nested_hold() {
  mkfifo gate
  "$FASTEN" exclusive "$PWD/lock" sh -c '"$0" exclusive "$1" sh -c "touch inner.held; read -r _ <gate" &
    until [ -e inner.held ]; do sleep 0.01; done' "$FASTEN" "$PWD/lock" 2>outer.err &
  outer=$!
  wait_for_file inner.held
  local deadline=$((SECONDS + 20))
  until grep -q -- "-> OFDLCK ADVISORY  WRITE .* $k_nested $k_nested" /proc/locks; do
    kill -0 "$outer" 2>/dev/null || fail "the outer fasten ended before the nested command"
    [ "$SECONDS" -lt "$deadline" ] || fail "the outer fasten does not wait for the nested hold"
    sleep 0.01
  done
}

test_the_outer_hold_lasts_until_a_nested_command_ends() {
  local outer
  start_outer_with_a_nested_hold
  expect_status 75 "$FASTEN" exclusive -n "$PWD/lock" true
  # status counts no waiter for it
  expect_contains "$(status_json lock)" '"waiting": 0'
  echo >gate
  wait "$outer" || fail "outer: $(cat outer.err)"
  expect_status 0 "$FASTEN" exclusive -n "$PWD/lock" true
}

test_a_signal_ends_an_outer_fasten_that_waits_for_a_nested_command_which_keeps_the_lock() {
  local outer
  start_outer_with_a_nested_hold
  kill -TERM "$outer"
  expect_status 143 wait "$outer"
  # The nested fasten and its command still hold the open file, and the lock.
  expect_status 75 "$FASTEN" exclusive -n "$PWD/lock" true
  echo >gate
  expect_status 0 "$FASTEN" exclusive -w 30 "$PWD/lock" true
}

test_a_nested_read_holds_the_lock_of_its_own_after_the_outer_reader_ends() {
  mkfifo gate start
  "$FASTEN" read "$PWD/lock" sh -c 'touch outer.held; read -r _ <start
    "$0" read "$1" sh -c "touch inner.held; read -r _ <gate" &
    until [ -e inner.held ]; do sleep 0.01; done' "$FASTEN" "$PWD/lock" 2>outer.err &
  local outer=$!
  wait_for_file outer.held
  "$FASTEN" write "$PWD/lock" touch writer.ran 2>writer.err &
  local writer=$!
  wait_for_waiters lock 1
  echo >start
  # The outer reader is gone; the nested one got in past the waiting writer
  # and holds the lock shared by itself.
  wait "$outer" || fail "outer: $(cat outer.err)"
  [ ! -e writer.ran ] || fail "the writer ran beside the nested reader"
  expect_eq shared "$(status_json lock | sed -n 's/.*"state": *"\([a-z]*\)".*/\1/p')"
  echo >gate
  wait "$writer" || fail "writer: $(cat writer.err)"
  [ -e writer.ran ] || fail "the writer did not run"
}

test_a_hold_taken_with_fd_is_re_entered_by_a_fasten_that_inherits_the_descriptor() {
  exec 9>>lock
  expect_status 0 "$FASTEN" exclusive -n --fd 9
  expect_status 0 timeout 120 "$FASTEN" exclusive "$PWD/lock" touch ran
  [ -e ran ] || fail "the nested command did not run"
  # Without the descriptor: this shell, its ancestor, holds the lock.
  expect_status 65 timeout 120 "$FASTEN" exclusive "$PWD/lock" true 9>&- 2>err
  expect_contains "$(cat err)" "an ancestor of this fasten, holds it exclusive"
  expect_status 0 "$FASTEN" unlock --fd 9
  exec 9>&-
}

# deploy.sh locks its descriptor and runs migrate.sh, which opens the lock
# file on a descriptor of its own and locks that: it would wait for
# deploy.sh, which waits for it. It is refused at once, as the path form is;
# with -n it gives up with the conflict status, as always.
test_fd_on_another_open_file_of_an_ancestor_s_hold_is_refused_at_once() {
  exec 9>>lock
  expect_status 0 "$FASTEN" exclusive -n --fd 9
  expect_status 65 timeout 120 bash -c 'exec 9>>lock; exec "$0" exclusive --fd 9' "$FASTEN" 2>err
  expect_contains "$(cat err)" "cannot lock descriptor 9 (exclusive): pid $BASHPID ("
  expect_contains "$(cat err)" "an ancestor of this fasten, holds it exclusive and waits for this fasten to end"
  expect_status 65 timeout 120 bash -c 'exec 8<lock; exec "$0" read -w 100 --fd 8' "$FASTEN" 2>err
  expect_status 75 timeout 120 bash -c 'exec 9>>lock; exec "$0" exclusive -n --fd 9' "$FASTEN" 2>err
  # The same open file, inherited, is the ancestor's hold itself: no wait.
  expect_status 0 timeout 120 "$FASTEN" exclusive --fd 9
  expect_status 0 "$FASTEN" unlock --fd 9
  exec 9>&-
}

# The command inherits the descriptor of LOCK alone, not those of --also's
# locks: a nested fasten on one of those is refused, and says that this may
# be why.
test_a_nested_request_on_an_also_lock_is_refused_naming_also() {
  : >other
  timeout 120 "$FASTEN" exclusive --also write "$PWD/other" "$PWD/lock" sh -c \
    '"$0" exclusive "$1" true; echo $? >inner.status' "$FASTEN" "$PWD/other" 2>err
  expect_eq 65 "$(cat inner.status)"
  expect_contains "$(cat err)" "no descriptor of this fasten's holds the lock (the outer fasten took it with --also"
}

# The ancestor's hold on the very open file that --fd locks is the one to
# be converted, not one to wait for: a read turned into a write waits for
# the other readers (the manual says why that is unsafe, not forbidden).
test_fd_turning_the_script_s_own_read_into_a_write_waits_for_the_other_readers() {
  exec 9<>lock
  expect_status 0 "$FASTEN" read --fd 9
  mkfifo gate
  timeout 120 "$FASTEN" read "$PWD/lock" sh -c 'touch other.held; read -r _ <gate' 9<&- >/dev/null 2>other.err &
  local other=$!
  wait_for_file other.held
  "$FASTEN" write -w 120 --fd 9 >/dev/null 2>writer.err &
  local writer=$!
  wait_for_waiters lock 1
  echo >gate
  wait "$other" || fail "other reader: $(cat other.err)"
  wait "$writer" || fail "the write on the script's own descriptor: $(cat writer.err)"
  expect_status 75 "$FASTEN" read -n "$PWD/lock" true 9<&-
  exec 9>&-
}

test_a_slot_inside_an_exclusive_hold_is_refused_at_once() {
  timeout 120 "$FASTEN" exclusive "$PWD/lock" sh -c '"$0" exclusive --slots 2 "$1" true; echo $? >inner.status' \
    "$FASTEN" "$PWD/lock" 2>err
  expect_eq 65 "$(cat inner.status)"
  expect_contains "$(cat err)" "leave out --slots"
}

run_suite
