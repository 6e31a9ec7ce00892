/* bench-slot-designs: what a freed slot's hand-off would cost under other
 * designs than libfasten's, measured with raw system calls in the shape of
 * `bench-handoff pingpong` (BENCHMARKS.md, "Row 3, fourth pass").
 *
 *   bench-slot-designs DESIGN LOCKFILE ROUNDS CPU_A CPU_B
 *
 * Two processes pass slot 1 of --slots 2 back and forth ROUNDS times while
 * an open file made before fork holds slot 0 throughout. In each round the
 * holder waits until the other process sleeps (state S in /proc/PID/stat),
 * reads CLOCK_MONOTONIC and releases; the waiter reads it when its acquire
 * returns. Prints the p50 and p90 of the hand-offs in µs. CPU_A and CPU_B
 * pin the two processes (the same CPU twice: one CPU).
 *
 * The bytes are libfasten's (src/lock/protocol.h): turnstile T = 2^62, data
 * T+1, the slot queue T+2, slot i at T+1024+i, the count of N slots at
 * T+2048+N. DESIGN is one of:
 *
 *   exclusive    the exclusive lock's hand-off, for the ratio: the waiter
 *                holds the turnstile and blocks on data; the releaser
 *                unlocks data; the waiter unlocks the turnstile.
 *   now          libfasten's slot hand-off: the releaser unlocks data to
 *                its count byte in one call and rings (fstat, then opens
 *                and closes /proc/self/fd/N); the head waits in ppoll on an
 *                inotify instance watching the file's close events, tries
 *                slot 0 and 1, probes the turnstile, takes data shared and
 *                unlocks the queue byte.
 *   bell         `now`, but the ring is the close of a descriptor of the
 *                file that the holder opened before it queued.
 *   bell-pass    `bell`, with the queue byte at T-1, next to the turnstile:
 *                after its slot the waiter takes turnstile and data shared
 *                in one call (it fails where a writer waits or holds) and
 *                unlocks queue byte and turnstile in one; and the head tries
 *                first the slot it held last.
 *   direct       the head blocks in F_OFD_SETLKW on slot 1, the one that is
 *                freed, then does what `now` does after its slot. An oracle:
 *                no design knows which slot is freed next; this is the
 *                least any design that waits in the kernel on one slot can
 *                cost when it guessed right.
 *   direct-pass  `direct` with `bell-pass`'s bytes after the slot.
 *   direct-thread `direct-pass`, and a second thread per wait in ppoll on
 *                the inotify instance (where a wrong guess would be caught;
 *                here it only ends when the ring wakes it).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TURNSTILE (INT64_C(1) << 62)
#define DATA (TURNSTILE + 1)
#define QUEUE (TURNSTILE + 2)
#define QUEUE_BESIDE (TURNSTILE - 1)
#define SLOTS (TURNSTILE + 1024)
#define COUNT_OF_2 (SLOTS + 1024 + 2)

enum design { EXCLUSIVE, NOW, BELL, BELL_PASS, DIRECT, DIRECT_PASS, DIRECT_THREAD };
static const char *const names[] = {"exclusive", "now", "bell", "bell-pass", "direct", "direct-pass",
                                    "direct-thread"};

static enum design design;
static const char *path;

/* One process's side: its open lock file, its inotify instance, the
 * descriptor whose close rings, the slot it held last. */
static int file = -1, notify = -1, bell = -1, last_slot = 0;
static pthread_t watcher;
static int watching;
static atomic_int won;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int lock_range(int command, short type, int64_t start, int64_t length) {
  struct flock range = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = length};
  return fcntl(file, command, &range);
}

static short probe(int64_t byte) {
  struct flock range = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
  if (fcntl(file, F_OFD_GETLK, &range) != 0) {
    die("F_OFD_GETLK");
  }
  return range.l_type;
}

static int passes(void) {
  return design == BELL_PASS || design == DIRECT_PASS || design == DIRECT_THREAD;
}

static int rings_by_bell(void) {
  return design != EXCLUSIVE && design != NOW;
}

static void drain(void) {
  char events[4096];
  while (read(notify, events, sizeof events) > 0) {
  }
}

static void *watch(void *unused) {
  (void)unused;
  struct pollfd ready = {notify, POLLIN, 0};
  while (!atomic_load(&won)) {
    ppoll(&ready, 1, NULL, NULL);
    drain();
  }
  return NULL;
}

/* Slot 0 and 1 without waiting, the one held last first where the design
 * says so: the slot taken, or -1. */
static int try_slots(void) {
  const int first = design == BELL_PASS ? last_slot : 0;
  for (int i = 0; i < 2; ++i) {
    const int slot = (first + i) % 2;
    if (lock_range(F_OFD_SETLK, F_WRLCK, SLOTS + slot, 1) == 0) {
      return slot;
    }
  }
  return -1;
}

static void wait_for_slot(void) {
  if (design == DIRECT || design == DIRECT_PASS || design == DIRECT_THREAD) {
    if (design == DIRECT_THREAD) {
      drain();
      atomic_store(&won, 0);
      if (pthread_create(&watcher, NULL, watch, NULL) != 0) {
        die("pthread_create");
      }
      watching = 1;
    }
    while (lock_range(F_OFD_SETLKW, F_WRLCK, SLOTS + 1, 1) != 0) {
    }
    atomic_store(&won, 1);
    last_slot = 1;
    return;
  }
  struct pollfd ready = {notify, POLLIN, 0};
  int slot;
  while ((slot = try_slots()) < 0) {
    drain();
    ppoll(&ready, 1, NULL, NULL);
  }
  last_slot = slot;
}

static void acquire(void) {
  if (design == EXCLUSIVE) {
    lock_range(F_OFD_SETLK, F_WRLCK, TURNSTILE, 1);
    while (lock_range(F_OFD_SETLKW, F_WRLCK, DATA, 1) != 0) {
    }
    lock_range(F_OFD_SETLK, F_UNLCK, TURNSTILE, 1);
    return;
  }
  if (watching) {
    pthread_join(watcher, NULL);
    watching = 0;
  }
  if (rings_by_bell() && bell < 0) {
    bell = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  }
  const int64_t queue = passes() ? QUEUE_BESIDE : QUEUE;
  lock_range(F_OFD_SETLK, F_RDLCK, COUNT_OF_2, 1);
  lock_range(F_OFD_SETLK, F_WRLCK, queue, 1);
  wait_for_slot();
  if (passes()) {
    if (lock_range(F_OFD_SETLK, F_RDLCK, TURNSTILE, 2) != 0) {
      die("a writer in the way");
    }
    lock_range(F_OFD_SETLK, F_UNLCK, QUEUE_BESIDE, 2);
  } else {
    if (probe(TURNSTILE) != F_UNLCK) {
      die("a writer in the way");
    }
    lock_range(F_OFD_SETLK, F_RDLCK, DATA, 1);
    lock_range(F_OFD_SETLK, F_UNLCK, QUEUE, 1);
  }
}

static void release(void) {
  if (design == EXCLUSIVE) {
    lock_range(F_OFD_SETLK, F_UNLCK, DATA, 1);
    return;
  }
  lock_range(F_OFD_SETLK, F_UNLCK, DATA, COUNT_OF_2 - DATA + 1);
  if (rings_by_bell()) {
    close(bell);
    bell = -1;
    return;
  }
  struct stat info;
  fstat(file, &info);
  char name[64];
  snprintf(name, sizeof name, "/proc/self/fd/%d", file);
  close(open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK));
}

struct shared {
  atomic_llong waiting, acquired, released_at;
  atomic_int pids[2], started;
};
static struct shared *shared;
static int64_t *latencies;

static int asleep(int pid) {
  char name[64], text[512];
  snprintf(name, sizeof name, "/proc/%d/stat", pid);
  const int stat = open(name, O_RDONLY | O_CLOEXEC);
  const ssize_t got = stat < 0 ? -1 : read(stat, text, sizeof text - 1);
  if (stat >= 0) {
    close(stat);
  }
  if (got <= 0) {
    return 0;
  }
  text[got] = '\0';
  const char *end = strrchr(text, ')');
  return end != NULL && end[1] == ' ' && end[2] == 'S';
}

static void take(int64_t round) {
  atomic_store(&shared->waiting, round);
  acquire();
  latencies[round] = now_ns() - atomic_load(&shared->released_at);
  atomic_store(&shared->acquired, round);
}

static void play(int self, int64_t rounds) {
  file = open(path, O_RDWR | O_CLOEXEC);
  notify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  char name[64];
  snprintf(name, sizeof name, "/proc/self/fd/%d", file);
  if (file < 0 || notify < 0 || inotify_add_watch(notify, name, IN_CLOSE_WRITE | IN_CLOSE_NOWRITE) < 0) {
    die("open or inotify");
  }
  if (self == 0) {
    acquire();
    atomic_store(&shared->started, 1);
  } else {
    while (!atomic_load(&shared->started)) {
      sched_yield();
    }
    take(0);
  }
  for (int64_t round = self; round < rounds; round += 2) {
    while (atomic_load(&shared->waiting) != round || !asleep(atomic_load(&shared->pids[1 - self]))) {
      sched_yield();
    }
    atomic_store(&shared->released_at, now_ns());
    release();
    while (atomic_load(&shared->acquired) != round) {
      sched_yield();
    }
    if (round + 1 < rounds) {
      take(round + 1);
    }
  }
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    die("sched_setaffinity");
  }
}

static int by_value(const void *a, const void *b) {
  const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fputs("usage: bench-slot-designs DESIGN LOCKFILE ROUNDS CPU_A CPU_B\n", stderr);
    return 64;
  }
  design = (enum design)-1;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
    if (strcmp(argv[1], names[i]) == 0) {
      design = (enum design)i;
    }
  }
  path = argv[2];
  const int64_t rounds = atoll(argv[3]);
  if ((int)design < 0 || rounds < 3) {
    fputs("bench-slot-designs: unknown design, or fewer than 3 rounds\n", stderr);
    return 64;
  }
  const int other = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  struct flock slot0 = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = SLOTS, .l_len = 1};
  if (other < 0 || (design != EXCLUSIVE && fcntl(other, F_OFD_SETLK, &slot0) != 0)) {
    die(path);
  }
  shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  latencies = mmap(NULL, sizeof *latencies * rounds, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED || latencies == MAP_FAILED) {
    die("mmap");
  }
  atomic_store(&shared->waiting, -1);
  atomic_store(&shared->acquired, -1);
  atomic_store(&shared->pids[0], getpid());
  const pid_t child = fork();
  if (child == 0) {
    pin(atoi(argv[5]));
    atomic_store(&shared->pids[1], getpid());
    play(1, rounds);
    _exit(0);
  }
  atomic_store(&shared->pids[1], child);
  pin(atoi(argv[4]));
  play(0, rounds);
  int status = 0;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fputs("bench-slot-designs: the other side failed\n", stderr);
    return 1;
  }
  /* Round 0 is the first queueing, not a hand-off like the rest. */
  qsort(latencies + 1, (size_t)(rounds - 1), sizeof *latencies, by_value);
  printf("%s p50 %.2f µs p90 %.2f µs\n", names[design], latencies[1 + (rounds - 1) / 2] / 1000.0,
         latencies[1 + (rounds - 1) * 9 / 10] / 1000.0);
  return 0;
}
