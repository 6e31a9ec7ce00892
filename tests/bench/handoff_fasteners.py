#!/usr/bin/python3
"""Library-level hand-off latency of Python fasteners' InterProcessLock.

    /usr/bin/python3 handoff_fasteners.py LOCKFILE ROUNDS [CPU_A CPU_B]

The same ping-pong as `bench-handoff pingpong` (tests/bench/handoff.cc): two
processes pass an exclusive lock back and forth; in each round the holder
waits until the other process is asleep in acquire() (state S in
/proc/PID/stat: fasteners sleeps between its non-blocking tries), reads
CLOCK_MONOTONIC and releases; the waiter reads the clock as soon as acquire()
returns. Prints one latency in ns per line. With CPU_A and CPU_B, each side
runs on its CPU alone. Timestamps and flags travel through an anonymous shared
mapping made before fork.

Run it with Debian's /usr/bin/python3, which has python3-fasteners.
"""

import mmap
import os
import struct
import sys
import time

import fasteners

# Shared words: waiting round, acquired round, release time, pid of each side,
# and "side 0 holds round 0".
WAITING, ACQUIRED, RELEASED_AT, PID0, PID1, STARTED = range(6)
WORD = struct.Struct("q")


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class Shared:
    def __init__(self, rounds):
        self.words = mmap.mmap(-1, WORD.size * 6)
        self.latencies = mmap.mmap(-1, WORD.size * rounds)
        self.set(WAITING, -1)
        self.set(ACQUIRED, -1)

    def get(self, index):
        return WORD.unpack_from(self.words, index * WORD.size)[0]

    def set(self, index, value):
        WORD.pack_into(self.words, index * WORD.size, value)


def wait_for(ready):
    """Spins politely, then sleeps in short steps, until ready()."""
    spins = 0
    while not ready():
        spins += 1
        if spins < 200:
            os.sched_yield()
        else:
            time.sleep(20e-6)


def sleeping(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return False
    return text[text.rindex(b")") + 2 : text.rindex(b")") + 3] == b"S"


def play(path, side, rounds, shared):
    lock = fasteners.InterProcessLock(path)
    holding = False

    def wait_and_take(round_):
        nonlocal holding
        shared.set(WAITING, round_)
        lock.acquire()
        WORD.pack_into(shared.latencies, round_ * WORD.size, now_ns() - shared.get(RELEASED_AT))
        shared.set(ACQUIRED, round_)
        holding = True

    if side == 0:
        lock.acquire()
        holding = True
        shared.set(STARTED, 1)
    else:
        wait_for(lambda: shared.get(STARTED) == 1)
        wait_and_take(0)
    other = PID1 if side == 0 else PID0
    for round_ in range(side, rounds, 2):
        wait_for(lambda: shared.get(WAITING) == round_)
        other_pid = shared.get(other)
        wait_for(lambda: sleeping(other_pid))
        shared.set(RELEASED_AT, now_ns())
        lock.release()
        holding = False
        # A release does not hand the lock over: wait until the other side
        # has it before queueing again.
        wait_for(lambda: shared.get(ACQUIRED) == round_)
        if round_ + 1 < rounds:
            wait_and_take(round_ + 1)
    if holding:
        lock.release()


def main():
    if len(sys.argv) not in (3, 5):
        sys.exit("usage: handoff_fasteners.py LOCKFILE ROUNDS [CPU_A CPU_B]")
    path, rounds = sys.argv[1], int(sys.argv[2])
    cpus = [int(cpu) for cpu in sys.argv[3:5]]
    shared = Shared(rounds)
    shared.set(PID0, os.getpid())
    child = os.fork()
    if child == 0:
        try:
            if cpus:
                os.sched_setaffinity(0, {cpus[1]})
            shared.set(PID1, os.getpid())
            play(path, 1, rounds, shared)
        finally:
            os._exit(0)
    shared.set(PID1, child)
    if cpus:
        os.sched_setaffinity(0, {cpus[0]})
    play(path, 0, rounds, shared)
    _, status = os.waitpid(child, 0)
    if status != 0:
        sys.exit("handoff_fasteners.py: the other side failed")
    for i in range(rounds):
        print(WORD.unpack_from(shared.latencies, i * WORD.size)[0])


if __name__ == "__main__":
    main()
