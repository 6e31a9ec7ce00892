#!/usr/bin/env bash
# The command line: every row of the exit-status table, usage errors, and what
# goes to stdout and stderr.
. "$(dirname "$0")/lib.sh"

test_the_command_s_exit_status_is_fasten_s() {
  expect_status 0 "$FASTEN" exclusive lock true
  expect_status 1 "$FASTEN" exclusive lock false
  expect_status 7 "$FASTEN" read lock sh -c 'exit 7'
  expect_status 255 "$FASTEN" write lock sh -c 'exit 255'
}

test_a_command_killed_by_signal_n_gives_128_plus_n() {
  expect_status 143 "$FASTEN" exclusive lock sh -c 'kill -TERM $$'
  expect_status 137 "$FASTEN" exclusive lock sh -c 'kill -KILL $$'
  expect_status 138 "$FASTEN" exclusive lock sh -c 'kill -USR1 $$'
  # A signal that dumps core is reported as 128 + N without a core of fasten's own.
  expect_status 134 bash -c 'ulimit -c 0; "$0" exclusive lock sh -c "kill -ABRT \$\$"' "$FASTEN"
}

test_a_lock_not_acquired_in_time_exits_with_the_conflict_status_silently() {
  hold holder exclusive lock
  local err
  expect_status 75 "$FASTEN" exclusive -n lock touch ran 2>err
  expect_status 75 "$FASTEN" read -w 0.1 lock touch ran 2>>err
  expect_status 0 "$FASTEN" exclusive -n -E 0 lock touch ran 2>>err
  expect_status 3 "$FASTEN" exclusive --nonblock --conflict-exit-code 3 lock touch ran 2>>err
  release holder
  [ ! -e ran ] || fail "the command ran without the lock"
  expect_eq "" "$(cat err)" "stderr"
}

test_usage_errors_exit_64_with_one_line_naming_the_value() {
  local bad
  for bad in abc -1 nan inf 1e400 ''; do
    expect_status 64 "$FASTEN" exclusive -w "$bad" lock touch ran 2>err
    expect_eq 1 "$(wc -l <err)" "lines on stderr for -w '$bad'"
    expect_contains "$(cat err)" "fasten: bad timeout: '$bad'"
  done
  expect_status 64 "$FASTEN" exclusive -E 256 lock touch ran 2>err
  expect_contains "$(cat err)" "256"
  expect_status 64 "$FASTEN" exclusive -F -o lock touch ran 2>err
  expect_status 64 "$FASTEN" exclusive lock 2>err
  expect_contains "$(cat err)" "missing COMMAND"
  expect_status 64 "$FASTEN" exclusive --bogus lock touch ran 2>err
  expect_contains "$(cat err)" "--bogus"
  expect_status 64 "$FASTEN" frobnicate lock touch ran 2>err
  expect_contains "$(cat err)" "frobnicate"
  expect_status 64 "$FASTEN" 2>err
  expect_status 64 "$FASTEN" exclusive --mode 9 lock touch ran 2>err
  [ ! -e ran ] || fail "a usage error ran the command"
  [ ! -e lock ] || fail "a usage error created the lock file"
}

# The usage errors that the option parser finds (an unknown option, an
# option given twice, one without its value) say so in fasten's words, with
# what to do, as the others do.
test_unknown_repeated_and_valueless_options_say_what_to_do() {
  expect_status 64 "$FASTEN" exclusive --bogus lock touch ran 2>err
  expect_eq "fasten: unknown option '--bogus' (see fasten exclusive --help)" "$(cat err)"
  expect_status 64 "$FASTEN" read -Z --bogus lock touch ran 2>err
  expect_eq "fasten: unknown option '-Z' (see fasten read --help)" "$(cat err)"
  expect_status 64 "$FASTEN" unlock -n --fd 9 2>err
  expect_eq "fasten: unknown option '-n' (see fasten unlock --help)" "$(cat err)"
  expect_status 64 "$FASTEN" unlock --fd 9 lock 2>err
  expect_eq "fasten: unexpected word 'lock' (see fasten unlock --help)" "$(cat err)"
  expect_status 64 "$FASTEN" status -v lock 2>err
  expect_eq "fasten: unknown option '-v' (see fasten status --help)" "$(cat err)"
  expect_status 64 "$FASTEN" exclusive --slots 2 --slots 3 lock touch ran 2>err
  expect_eq "fasten: --slots is given more than once: give it once" "$(cat err)"
  expect_status 64 "$FASTEN" exclusive -E 1 -E 2 lock touch ran 2>err
  expect_eq "fasten: --conflict-exit-code is given more than once: give it once" "$(cat err)"
  expect_status 64 "$FASTEN" write -w 2>err
  expect_eq "fasten: --timeout needs a value, SECONDS: fasten write --timeout SECONDS LOCK COMMAND" "$(cat err)"
  expect_status 64 "$FASTEN" exclusive --also read 2>err
  expect_eq "fasten: --also needs a value, MODE LOCK2: fasten exclusive --also MODE LOCK2 LOCK COMMAND" "$(cat err)"
  expect_status 64 "$FASTEN" read -c 2>err
  expect_eq "fasten: --command needs a value, STRING: fasten read --command STRING LOCK" "$(cat err)"
  expect_status 64 "$FASTEN" unlock --fd 2>err
  expect_eq "fasten: --fd needs a value, N: fasten unlock --fd N" "$(cat err)"
  # Other people's bytes are escaped.
  expect_status 64 "$FASTEN" exclusive $'--\e[2J' lock touch ran 2>err
  expect_eq "fasten: unknown option '--\\e[2J' (see fasten exclusive --help)" "$(cat err)"
  [ ! -e ran ] || fail "a usage error ran the command"
}

# FASTEN_ETCD_RECHECK is read with the command line, by fasten before it
# hands an etcd LOCK to fasten-etcd, and in the plain form too (LOCK
# COMMAND, no option): nothing is tried on etcd with a bad one.
test_a_bad_etcd_recheck_is_a_usage_error_of_one_line_that_names_it() {
  local value
  for value in abc 0 0.000 -1 '' 1e3 nan 2s ' 2' 1000000001; do
    FASTEN_ETCD_RECHECK=$value expect_status 64 "$FASTEN" exclusive -w 1 etcd://127.0.0.1:1/x touch ran 2>err
    expect_eq 1 "$(wc -l <err)" "lines on stderr for FASTEN_ETCD_RECHECK='$value'"
    expect_eq "fasten: FASTEN_ETCD_RECHECK: expected seconds greater than 0, up to 1000000000 (e.g. 2 or 0.5), got '$value'" \
      "$(cat err)" "stderr for FASTEN_ETCD_RECHECK='$value'"
  done
  FASTEN_ETCD_RECHECK=abc expect_status 64 "$FASTEN" exclusive etcd://127.0.0.1:1/x -- touch ran 2>err
  expect_contains "$(cat err)" "fasten: FASTEN_ETCD_RECHECK: expected seconds greater than 0"
  # Other people's bytes are escaped.
  FASTEN_ETCD_RECHECK=$'1\e[2J' expect_status 64 "$FASTEN" exclusive lock true 2>err
  expect_eq 1 "$(wc -l <err)" "lines on stderr for an escape sequence"
  [ -z "$(tr -d '[:print:]\n' <err)" ] || fail "an unescaped control character reached stderr: $(od -c err)"
  [ ! -e ran ] || fail "a usage error ran the command"
}

test_a_lock_file_that_cannot_be_opened_exits_66() {
  expect_status 66 "$FASTEN" exclusive no-such-dir/lock touch ran 2>err
  expect_contains "$(cat err)" "fasten: cannot open lock file: no-such-dir/lock: No such file or directory"
  expect_status 66 "$FASTEN" exclusive --no-create missing touch ran 2>err
  expect_contains "$(cat err)" "missing"
  [ ! -e missing ] || fail "--no-create created the file"
  [ ! -e ran ] || fail "the command ran without the lock"
}

test_permission_denied_on_the_lock_file_exits_66() {
  command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed"
  touch private
  chmod 600 private
  chmod 755 .
  expect_status 66 setpriv --reuid=65534 --regid=65534 --clear-groups "$FASTEN" exclusive private true 2>err
  expect_contains "$(cat err)" "Permission denied"
}

test_an_exclusive_lock_on_a_directory_exits_65() {
  mkdir dir
  expect_status 65 "$FASTEN" exclusive dir touch ran 2>err
  expect_eq "fasten: cannot take an exclusive lock on a directory: dir: an exclusive fcntl lock needs a file \
open for writing, and a directory cannot be opened so (flock(1) locks it with flock(2)); lock a file inside it, \
e.g. dir/.lock" "$(cat err)"
  expect_status 65 "$FASTEN" write dir/ touch ran 2>err
  expect_contains "$(cat err)" "; lock a file inside it, e.g. dir/.lock"
  [ ! -e ran ] || fail "the command ran without the lock"
  expect_status 0 "$FASTEN" read dir true
}

test_a_failed_fork_exits_71() {
  command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed"
  chmod 777 .
  # As an unprivileged user with a process limit of 1, fasten cannot fork.
  # (LeakSanitizer, in a sanitizer build, would need a thread of its own at exit.)
  expect_status 71 env ASAN_OPTIONS=detect_leaks=0 setpriv --reuid=65534 --regid=65534 --clear-groups \
    bash -c 'ulimit -u 1 && exec "$0" exclusive "$PWD/lock" true' "$FASTEN" 2>err
  # vfork, or fork where the command runs under a keeper (classic locks).
  grep -qE "^fasten: true: cannot start it \((v?fork)\)" err || fail "unexpected: $(cat err)"
}

test_an_option_after_lock_that_is_not_a_command_says_options_go_before_lock() {
  expect_status 127 "$FASTEN" exclusive lock -v true 2>err
  expect_eq "fasten: -v: command not found; fasten's options go before LOCK: fasten exclusive -v LOCK COMMAND" \
    "$(cat err)"
  expect_status 127 "$FASTEN" read -n lock --timeout 3 true 2>err
  expect_eq "fasten: --timeout: command not found; fasten's options go before LOCK: fasten read --timeout SECONDS LOCK COMMAND" \
    "$(cat err)"
  # -F execs in place: the same line. An option's value is named as --help
  # names it: typed as shown, LOCK is not taken for the timeout.
  expect_status 127 "$FASTEN" write -F lock -w 3 true 2>err
  expect_contains "$(cat err)" "fasten's options go before LOCK: fasten write -w SECONDS LOCK COMMAND"
  expect_status 127 "$FASTEN" write lock --also read other true 2>err
  expect_contains "$(cat err)" "fasten's options go before LOCK: fasten write --also MODE LOCK2 LOCK COMMAND"
}

test_a_command_that_is_not_found_exits_127_and_not_executable_126() {
  expect_status 127 "$FASTEN" exclusive lock no-such-command-xyz 2>err
  expect_eq "fasten: no-such-command-xyz: command not found" "$(cat err)"
  # A path is not a command looked up in PATH: its file is not there.
  expect_status 127 "$FASTEN" exclusive lock ./no-such-file 2>err
  expect_eq "fasten: ./no-such-file: no such file or directory" "$(cat err)"
  printf 'echo hi\n' >script
  chmod 644 script
  expect_status 126 "$FASTEN" exclusive lock ./script 2>err
  expect_contains "$(cat err)" "./script: cannot execute: Permission denied"
  mkdir adir
  expect_status 126 "$FASTEN" exclusive lock ./adir 2>err
  expect_eq "fasten: ./adir: is a directory, not a command" "$(cat err)"
}

test_the_errors_of_a_command_that_cannot_start_say_what_is_wrong_with_it() {
  printf '#!/no/such/interpreter -x\necho hi\n' >script
  chmod 755 script
  expect_status 127 "$FASTEN" exclusive lock ./script 2>err
  expect_eq "fasten: ./script: its #! interpreter /no/such/interpreter was not found" "$(cat err)"
  # Found on PATH: the same.
  mkdir bin && mv script bin/tool
  PATH=$PWD/bin:$PATH expect_status 127 "$FASTEN" exclusive lock tool 2>err
  expect_contains "$(cat err)" "tool: its #! interpreter /no/such/interpreter was not found"
  expect_status 127 "$FASTEN" exclusive lock '' 2>err
  expect_contains "$(cat err)" "the command is empty"
  # A script saved with DOS line ends names "/bin/sh\r": the line says so,
  # with the carriage return as \r, not as a '?' that hides it.
  printf '#!/bin/sh\r\necho hi\r\n' >dos.sh
  chmod 755 dos.sh
  expect_status 127 "$FASTEN" exclusive lock ./dos.sh 2>err
  expect_eq "fasten: ./dos.sh: its #! interpreter /bin/sh\\r was not found: the script's lines end in \\r\\n (DOS); convert them to \\n (dos2unix)" \
    "$(cat err)"
  printf '#!/no/such\001interpreter\n' >ctl.sh
  chmod 755 ctl.sh
  expect_status 127 "$FASTEN" exclusive lock ./ctl.sh 2>err
  expect_eq "fasten: ./ctl.sh: its #! interpreter /no/such\\x01interpreter was not found" "$(cat err)"
}

test_flock_habits_get_a_hint_with_the_fasten_form() {
  expect_status 64 "$FASTEN" -n lock true 2>err
  expect_contains "$(cat err)" "fasten exclusive -n LOCK COMMAND"
  expect_status 64 "$FASTEN" -s lock true 2>err
  expect_contains "$(cat err)" "fasten read LOCK COMMAND"
  expect_status 64 "$FASTEN" -u 9 2>err
  expect_contains "$(cat err)" "fasten unlock --fd 9"
  expect_eq 1 "$(wc -l <err)"
}

test_fasten_signalled_while_waiting_exits_128_plus_n_and_never_runs_the_command() {
  hold holder exclusive lock
  local sig status pid
  for sig in HUP INT QUIT TERM USR1 USR2; do
    # Every signal at its default, as in an interactive shell's job; a
    # script's background job would have INT and QUIT ignored.
    env --default-signal "$FASTEN" exclusive lock touch ran &
    pid=$!
    wait_for_waiters lock 1
    kill -s "$sig" "$pid"
    status=0
    wait "$pid" || status=$?
    expect_eq "$((128 + $(kill -l "$sig")))" "$status" "status after SIG$sig"
  done
  release holder
  [ ! -e ran ] || fail "the command ran after fasten was signalled"
}

test_signals_fasten_inherited_ignored_do_not_end_its_wait_and_stay_ignored_for_the_command() {
  hold holder exclusive lock
  (trap '' HUP INT QUIT TERM USR1 USR2; exec "$FASTEN" exclusive -w 30 lock \
    awk '/^SigIgn/ { print $2 }' /proc/self/status) >ignored 2>err &
  local pid=$! sig status=0
  wait_for_waiters lock 1
  for sig in HUP INT QUIT TERM USR1 USR2; do
    kill -s "$sig" "$pid"
  done
  release holder
  wait "$pid" || status=$?
  expect_eq 0 "$status" "fasten's status ($(cat err))"
  # HUP 1, INT 2, QUIT 3, USR1 10, USR2 12, TERM 15: bits N - 1.
  expect_eq $((0x4a07)) $((0x$(cat ignored) & 0x4a07)) "the six signals in the command's SigIgn $(cat ignored)"
}

test_stdout_carries_only_the_command_s_output() {
  hold holder exclusive lock
  "$FASTEN" exclusive -v lock echo hello >out 2>err &
  local pid=$!
  wait_for_waiters lock 1
  release holder
  wait "$pid"
  expect_eq "hello" "$(cat out)" "stdout"
  expect_contains "$(cat err)" "fasten: waiting to lock lock (exclusive)"
}

test_an_etcd_lock_without_fasten_etcd_exits_69_naming_where_it_looked() {
  # fasten alone, as in a build or an install without etcd.
  mkdir -p alone/bin
  cp "$FASTEN" alone/bin/fasten
  expect_status 69 alone/bin/fasten exclusive etcd://127.0.0.1:1/jobs touch ran 2>err
  expect_eq 1 "$(wc -l <err)" "lines on stderr"
  expect_contains "$(cat err)" "fasten: etcd://127.0.0.1:1/jobs: etcd locks need $PWD/alone/libexec/fasten/fasten-etcd, which is not installed"
  expect_status 69 alone/bin/fasten status etcd://127.0.0.1:1/jobs 2>/dev/null
  [ ! -e ran ] || fail "the command ran without the lock"
}

test_fasten_itself_has_no_network_code() {
  if ldd "$FASTEN" | grep -qE 'libcurl|libssl|libcrypto'; then
    fail "fasten links a network library:" "$(ldd "$FASTEN")"
  fi
  # (A static glibc has a dlopen of its own, for NSS: not fasten's.)
  if nm -C "$FASTEN" | grep -qE 'fasten::etcd::|curl_|SSL_'; then
    fail "fasten holds etcd code:" "$(nm -C "$FASTEN" | grep -E 'fasten::etcd::|curl_|SSL_' | head -5)"
  fi
}

# no_raw_controls FILE WHAT: FILE holds only lines that start with "fasten: "
# and no byte a terminal would act on (but the newline that ends a line).
no_raw_controls() {
  if LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f]' "$1"; then
    fail "$2: a raw control byte reached stderr: $(od -c "$1" | head -5)"
  fi
  if grep -qv '^fasten: ' "$1"; then
    fail "$2: a line that is not one of fasten's: $(cat -v "$1")"
  fi
}

test_paths_link_targets_and_commands_in_fasten_s_messages_are_escaped() {
  local evil=$'x\e]0;HACKED\a\e[2J\nfasten: forged\xff\\e'
  ln -s "/nonexistent/$evil" dl
  expect_status 66 "$FASTEN" exclusive dl true 2>err
  no_raw_controls err "a dangling link"
  expect_contains "$(cat err)" '\e]0;HACKED\a\e[2J\nfasten: forged\xff\\e'
  # -v's lines: waiting (with a holder whose command line is evil too),
  # locked, gave up, unlocked.
  hold h exclusive "$evil"
  expect_status 75 "$FASTEN" exclusive -v -w 0.01 "$evil" true 2>err
  no_raw_controls err "-v's lines while waiting"
  expect_contains "$(cat err)" 'waiting up to 0.01 s to lock x\e]0;HACKED\a\e[2J\nfasten: forged\xff\\e'
  release h
  "$FASTEN" exclusive -v "$evil" true 2>err
  no_raw_controls err "-v's lines"
  expect_contains "$(cat err)" 'unlocked x\e]0;HACKED'
  # Open errors, and a command that cannot start.
  expect_status 66 "$FASTEN" exclusive "nodir/$evil" true 2>err
  no_raw_controls err "an open error"
  expect_status 127 "$FASTEN" exclusive lock "$evil" 2>err
  no_raw_controls err "a command not found"
  expect_status 64 "$FASTEN" exclusive -w "$evil" lock true 2>err
  no_raw_controls err "a bad timeout"
}

test_every_line_fasten_writes_on_stderr_goes_through_the_escaping_sink() {
  # diagnostics.cc escapes every line it writes; the waiting line at a
  # terminal is built from escaped parts (wait-line.cc, terminal-*.cc).
  # Anything else that writes on stderr would bypass the escaping.
  local bypass
  bypass=$(grep -rnE 'std::(cerr|clog)|\bstderr\b|STDERR_FILENO|\bperror\(|\bfprintf\(|spdlog::(info|warn|error|debug)\(' \
    "$FASTEN_SOURCE_ROOT/src" --include='*.cc' --include='*.h' |
    grep -vE '^[^:]*/src/cli/(diagnostics|terminal-posix|terminal-win32)\.cc:|^[^:]*:[0-9]+: *(//|/\*|\*)|"[^"]*stderr[^"]*"' || true)
  [ -z "$bypass" ] || fail "written on stderr without the escaping: $bypass"
  grep -q 'escape_controls' "$FASTEN_SOURCE_ROOT/src/cli/diagnostics.cc" ||
    fail "diagnostics.cc does not escape what it writes"
}

test_help_and_version() {
  local out
  out=$("$FASTEN" --help)
  expect_contains "$out" "exclusive"
  expect_contains "$out" "read"
  expect_contains "$out" "write"
  out=$("$FASTEN" exclusive --help)
  for option in --timeout --nonblock --conflict-exit-code --command --close --no-fork --mode --no-create --verbose; do
    expect_contains "$out" "$option"
  done
  expect_contains "$("$FASTEN" --version)" "fasten "
  expect_contains "$("$FASTEN" -V)" "fasten "
}

# status --help lists every status that status exits with: 65 for a LOCK
# that cannot be a lock (a socket, a file on /proc), 77 for an etcd role
# that may not read the marks, as the manual's EXIT STATUS says.
test_status_help_lists_the_statuses_status_exits_with() {
  local out
  out=$("$FASTEN" status --help)
  local status
  for status in 64 65 66 69 71 74 77; do
    expect_contains "$out" " $status "
  done
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' sock 2>/dev/null ||
    return 0
  expect_status 65 "$FASTEN" status sock 2>/dev/null
}

test_help_and_version_that_cannot_be_written_exit_74() {
  local words got
  for words in "--help" "--version" "exclusive --help" "status --help"; do
    got=0
    # shellcheck disable=SC2086 # the words are split on purpose
    "$FASTEN" $words >/dev/full 2>err || got=$?
    expect_eq 74 "$got" "exit status of fasten $words"
    expect_eq 1 "$(wc -l <err)" "lines on stderr from fasten $words"
    expect_contains "$(cat err)" "fasten: cannot write the output: No space left on device"
  done
}

run_suite
