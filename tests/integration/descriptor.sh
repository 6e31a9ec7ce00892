#!/usr/bin/env bash
# The shell-script form: lock an inherited descriptor, leave it locked, unlock it.
. "$(dirname "$0")/lib.sh"

if classic_locks; then
  # A lock that fasten takes on a descriptor would end with fasten.
  test_fd_is_refused_where_locks_belong_to_the_process() {
    exec 9>>lock
    expect_status 64 "$FASTEN" exclusive --fd 9 2>err
    expect_contains "$(cat err)" "--fd needs open-file-description locks"
    expect_status 64 "$FASTEN" unlock --fd 9 2>err
    expect_contains "$(cat err)" "--fd needs open-file-description locks"
  }
  run_suite
  exit
fi

test_fd_locks_the_shell_s_open_file_and_leaves_it_locked() {
  exec 9>>lock
  expect_status 0 "$FASTEN" exclusive -n --fd 9
  # fasten has exited; the lock stays with the shell's open file. (Another
  # process, not one that inherits the descriptor: that one would re-enter
  # the hold, as the manual's "Composing locks" says.)
  expect_status 75 "$FASTEN" exclusive -n lock true 9>&-
  expect_status 75 "$FASTEN" read -n lock true 9>&-
  expect_status 0 "$FASTEN" unlock --fd 9
  expect_status 0 "$FASTEN" exclusive -n lock true
  exec 9>&-
}

test_fd_read_locks_share_and_exclude_writers() {
  exec 8<lock 2>/dev/null || { touch lock; exec 8<lock; }
  expect_status 0 "$FASTEN" read --fd 8
  expect_status 0 "$FASTEN" read -n lock true 8<&-
  expect_status 75 "$FASTEN" write -n lock true 8<&-
  exec 8<&-
  # Closing the shell's last descriptor of the open file drops its lock.
  expect_status 0 "$FASTEN" write -n lock true
}

test_fd_waits_and_times_out_with_the_conflict_status() {
  hold holder exclusive lock
  exec 9>>lock
  local start end
  start=$(now_ms)
  expect_status 75 "$FASTEN" exclusive -w 0.2 --fd 9
  end=$(now_ms)
  [ $((end - start)) -ge 190 ] || fail "gave up after $((end - start)) ms"
  expect_status 9 "$FASTEN" exclusive -n -E 9 --fd 9
  release holder
  expect_status 0 "$FASTEN" exclusive -w 5 --fd 9
  exec 9>&-
}

test_the_script_idiom_skips_when_another_run_holds_the_lock() {
  mkfifo go
  cat >job.sh <<SH
exec 9>>lock
"$FASTEN" exclusive -n --fd 9 || exit 0
echo ran >> runs
[ "\$1" != first ] || read -r _ < go
SH
  bash job.sh first &
  local first=$!
  wait_for_file runs
  bash job.sh second
  echo >go
  wait "$first"
  expect_eq 1 "$(wc -l <runs)" "runs"
}

test_an_exclusive_lock_on_a_descriptor_not_open_for_writing_exits_65() {
  touch lock
  exec 8<lock
  expect_status 65 "$FASTEN" exclusive --fd 8 2>err
  expect_contains "$(cat err)" "fasten: cannot take an exclusive lock on a file not open for writing: descriptor 8"
  exec 8<&-
}

test_a_descriptor_that_is_not_open_exits_66() {
  expect_status 66 "$FASTEN" exclusive --fd 7 7>&- 2>err
  expect_contains "$(cat err)" "descriptor 7"
  expect_status 66 "$FASTEN" unlock --fd 7 7>&- 2>/dev/null
}

# fasten opens /dev/null on a standard descriptor it was started with
# closed, for its own sake: that is no descriptor of the caller's to lock,
# and locking it would lock nothing the script holds.
test_a_standard_descriptor_that_is_closed_is_not_open_for_fd_either() {
  expect_status 66 "$FASTEN" read --fd 0 <&- 2>err
  expect_eq "fasten: cannot use descriptor: descriptor 0: Bad file descriptor" "$(cat err)"
  expect_status 66 "$FASTEN" exclusive --fd 1 >&- 2>err
  expect_contains "$(cat err)" "descriptor 1"
  expect_status 66 "$FASTEN" exclusive --fd 2 2>&-
  expect_status 66 "$FASTEN" unlock --fd 0 <&- 2>err
  expect_contains "$(cat err)" "descriptor 0"
  # Open, they are descriptors as any other.
  touch lock
  expect_status 0 "$FASTEN" read --fd 0 <lock
}

test_fd_usage_errors() {
  exec 9>>lock
  expect_status 64 "$FASTEN" exclusive --fd 9 lock 2>/dev/null
  expect_status 64 "$FASTEN" exclusive --fd 9 -c true 2>/dev/null
  expect_status 64 "$FASTEN" exclusive --fd 9 -o 2>/dev/null
  expect_status 64 "$FASTEN" exclusive --fd x 2>/dev/null
  expect_status 64 "$FASTEN" exclusive --fd -1 2>/dev/null
  expect_status 64 "$FASTEN" unlock 2>/dev/null
  exec 9>&-
}


# with_descriptor KIND COMMAND...: runs COMMAND with descriptor 9 open on a
# descriptor that is no file: socket, epoll, eventfd, signalfd, timerfd,
# inotify or pidfd.
with_descriptor() {
  python3 -c '
import ctypes, os, select, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
kind = sys.argv[1]
if kind == "socket":
    fd = socket.socketpair()[0].detach()
elif kind == "epoll":
    epoll = select.epoll()
    fd = os.dup(epoll.fileno())
elif kind == "eventfd":
    fd = os.eventfd(0)
elif kind == "signalfd":
    fd = libc.signalfd(-1, ctypes.create_string_buffer(128), 0)
elif kind == "timerfd":
    fd = libc.timerfd_create(1, 0)
elif kind == "inotify":
    fd = libc.inotify_init()
elif kind == "pidfd":
    fd = os.pidfd_open(os.getpid())
if fd < 0:
    sys.exit("cannot make a " + kind + " descriptor")
os.dup2(fd, 9)
os.execv(sys.argv[2], sys.argv[2:])
' "$@"
}

test_a_descriptor_that_no_other_process_can_open_is_refused_with_65() {
  local kind mode
  for kind in socket epoll eventfd signalfd timerfd inotify pidfd; do
    for mode in read exclusive; do
      expect_status 65 with_descriptor "$kind" "$FASTEN" "$mode" --fd 9 2>err
      expect_contains "$(cat err)" "fasten: cannot be a lock: descriptor 9: it is a"
      expect_contains "$(cat err)" "which no other process can open to lock; use a regular file"
      expect_eq 1 "$(wc -l <err)" "lines on stderr for $mode on $kind"
    done
  done
  expect_status 65 "$FASTEN" read --fd 9 9< <(true) 2>err
  expect_contains "$(cat err)" "fasten: cannot be a lock: descriptor 9: it is a pipe"
  expect_status 65 "$FASTEN" exclusive --fd 9 9> >(cat >/dev/null) 2>err
  expect_contains "$(cat err)" "fasten: cannot be a lock: descriptor 9: it is a pipe"
  # A FIFO has an inode of its own on its file system: it stays a lock.
  mkfifo fifo
  exec 9<>fifo
  expect_status 0 "$FASTEN" exclusive --fd 9
  expect_status 75 "$FASTEN" exclusive -n fifo true 9>&-
  exec 9>&-
}

run_suite
