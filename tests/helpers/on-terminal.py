#!/usr/bin/env python3
"""on-terminal.py TRANSCRIPT COMMAND [ARG...]: runs COMMAND with its standard
input, output and error on a new pseudo-terminal $COLUMNS wide (80 unless
set), as a person
at a terminal would, and appends every byte it writes there to TRANSCRIPT as it
comes. Exits with COMMAND's status. On SIGUSR1 it resizes the terminal to
$RESIZE_COLUMNS, as a person resizing the window does (the terminal's
foreground group gets SIGWINCH)."""
import fcntl
import os
import pty
import signal
import struct
import sys
import termios


def main():
    transcript, command = sys.argv[1], sys.argv[2:]
    pid, master = pty.fork()
    if pid == 0:
        # As from an interactive shell: Ctrl-C and Ctrl-\\ at their default,
        # even where a script's background job would inherit them ignored.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, int(os.environ.get("COLUMNS", "80")), 0, 0))
        # Raw output: the transcript shows the bytes as written, with no
        # carriage return added before each newline.
        attributes = termios.tcgetattr(1)
        attributes[1] &= ~termios.OPOST
        termios.tcsetattr(1, termios.TCSANOW, attributes)
        os.execvp(command[0], command)
    def resize(_signal, _frame):
        columns = int(os.environ.get("RESIZE_COLUMNS", "80"))
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))

    signal.signal(signal.SIGUSR1, resize)
    with open(transcript, "ab", buffering=0) as out:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not data:
                break
            out.write(data)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status) % 256)


main()
