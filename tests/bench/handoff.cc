// bench-handoff: how long an exclusive lock takes to pass from one process to
// another at the library level, for scripts/bench.
//
//   bench-handoff pingpong KIND LOCKFILE ROUNDS [CPU_A CPU_B]
//       Two processes pass the lock back and forth ROUNDS times. In each round
//       the holder waits until the other process is asleep in its acquire
//       (state S in /proc/PID/stat), reads CLOCK_MONOTONIC, and releases; the
//       waiter reads the clock as soon as its acquire returns. Prints one
//       latency in ns per line. With CPU_A and CPU_B, the two processes run
//       on those CPUs alone: two CPUs for a cross-CPU wake-up every time,
//       the same one for none (the lock calls and a context switch only).
//
//   bench-handoff many KIND LOCKFILE N
//       The parent holds the lock while N children, each with its own open
//       lock file, queue for it; once all N sleep in their acquire, the parent
//       releases. Each child takes the lock, notes the time, releases and
//       exits. Prints "total NS" (release to the last child's acquisition: N
//       hand-offs) and then one line per hand-off with its gap in ns.
//
// KIND is what takes the lock:
//   fasten  libfasten's LockFile (whatever protocol it uses)
//   slot    libfasten's LockFile::acquire_slot(2), while the parent holds the
//           other slot all along (pingpong only): the hand-off of a slot
//           that a waiter waits for on every slot at once
//   flock   raw flock(2), the lock flock(1) takes
//   ofd     raw fcntl(F_OFD_SETLKW) over the whole file: the kernel lock table
//           libfasten uses, without the library
//
// The processes share their timestamps through an anonymous MAP_SHARED
// mapping made before fork.

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "lock/lock.h"

namespace {

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "bench-handoff: %s\n", message.c_str());
  std::_Exit(1);
}

std::int64_t monotonic_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

enum class Kind { fasten, slot, flock, ofd };

/// The slots of Kind::slot: one for the two sides, one held throughout.
constexpr int k_slots = 2;

Kind parse_kind(const std::string& name) {
  if (name == "fasten") {
    return Kind::fasten;
  }
  if (name == "slot") {
    return Kind::slot;
  }
  if (name == "flock") {
    return Kind::flock;
  }
  if (name == "ofd") {
    return Kind::ofd;
  }
  die("unknown lock kind " + name + " (fasten, slot, flock or ofd)");
}

/// One open lock file and an exclusive lock on it, taken the KIND way. Each
/// process opens its own, so each has its own open file description.
class BenchLock {
public:
  BenchLock(Kind kind, const std::string& path) : m_kind(kind) {
    if (kind == Kind::fasten || kind == Kind::slot) {
      auto opened = fasten::LockFile::open(path);
      if (!opened) {
        die(opened.error().message());
      }
      m_lock.emplace(std::move(opened).value());
      return;
    }
    m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (m_fd < 0) {
      die("cannot open " + path + ": " + std::strerror(errno));
    }
  }
  BenchLock(const BenchLock&) = delete;
  BenchLock& operator=(const BenchLock&) = delete;

  void acquire() {
    switch (m_kind) {
    case Kind::fasten: {
      auto outcome = m_lock->acquire(fasten::LockMode::exclusive);
      if (!outcome || outcome.value() != fasten::Outcome::acquired) {
        die(outcome ? "acquire timed out" : outcome.error().message());
      }
      return;
    }
    case Kind::slot: {
      auto slot = m_lock->acquire_slot(k_slots);
      if (!slot || !slot.value()) {
        die(slot ? "acquire_slot timed out" : slot.error().message());
      }
      return;
    }
    case Kind::flock:
      while (::flock(m_fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
          die(std::string("flock: ") + std::strerror(errno));
        }
      }
      return;
    case Kind::ofd: {
#ifdef F_OFD_SETLKW
      struct flock range = whole_file(F_WRLCK);
      while (fcntl(m_fd, F_OFD_SETLKW, &range) != 0) {
        if (errno != EINTR) {
          die(std::string("fcntl: ") + std::strerror(errno));
        }
      }
      return;
#else
      die("this system has no open-file-description locks");
#endif
    }
    }
  }

  void release() {
    switch (m_kind) {
    case Kind::fasten:
    case Kind::slot: {
      auto released = m_lock->release();
      if (!released) {
        die(released.error().message());
      }
      return;
    }
    case Kind::flock:
      if (::flock(m_fd, LOCK_UN) != 0) {
        die(std::string("flock: ") + std::strerror(errno));
      }
      return;
    case Kind::ofd: {
#ifdef F_OFD_SETLK
      struct flock range = whole_file(F_UNLCK);
      if (fcntl(m_fd, F_OFD_SETLK, &range) != 0) {
        die(std::string("fcntl: ") + std::strerror(errno));
      }
      return;
#else
      die("this system has no open-file-description locks");
#endif
    }
    }
  }

private:
  static struct flock whole_file(short type) {
    struct flock range {};
    range.l_type = type;
    range.l_whence = SEEK_SET;
    return range; // l_start = l_len = 0: the whole file; l_pid = 0 for OFD
  }

  Kind m_kind;
  std::optional<fasten::LockFile> m_lock;
  int m_fd = -1;
};

/// Memory that the processes of one run share: made before fork.
template <typename T> T* shared_memory(std::size_t count = 1) {
  void* memory = mmap(nullptr, sizeof(T) * count, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    die(std::string("mmap: ") + std::strerror(errno));
  }
  return static_cast<T*>(memory);
}

/// Waits until `ready()`. It spins (yielding the CPU to anyone who wants it)
/// for up to 5 ms before it falls back to short sleeps: a holder that slept
/// while its peer queued would release at a random time after the peer's CPU
/// went idle, and in a VM how long that CPU has been idle changes how long
/// waking it takes (KVM halt polling), which would blur the software cost
/// this measures.
template <typename Predicate> void wait_for(Predicate ready) {
  const std::int64_t spin_until = monotonic_ns() + 5'000'000;
  while (!ready()) {
    if (monotonic_ns() < spin_until) {
      sched_yield();
    } else {
      const timespec step{0, 20'000};
      nanosleep(&step, nullptr);
    }
  }
}

/// Whether the thread whose stat file is `path` is asleep (S).
bool asleep(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  char text[512];
  const ssize_t got = read(fd, text, sizeof text - 1);
  close(fd);
  if (got <= 0) {
    return false;
  }
  text[got] = '\0';
  const char* close_paren = std::strrchr(text, ')'); // the name may hold spaces
  return close_paren != nullptr && close_paren[1] == ' ' && close_paren[2] == 'S';
}

/// Whether every thread of `pid` is asleep (S): the processes here sleep
/// only in the lock wait, with whatever threads the library waits in.
bool sleeping(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task", static_cast<int>(pid));
  DIR* tasks = opendir(path);
  if (tasks == nullptr) {
    return false;
  }
  int threads = 0;
  bool all = true;
  while (const dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') {
      continue;
    }
    char stat[sizeof path + sizeof entry->d_name + 8];
    std::snprintf(stat, sizeof stat, "%s/%s/stat", path, entry->d_name);
    ++threads;
    all = all && asleep(stat);
  }
  closedir(tasks);
  return all && threads > 0;
}

void wait_for_exit(pid_t child) {
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) {
      die(std::string("waitpid: ") + std::strerror(errno));
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    die("a child process failed");
  }
}

struct PingPong {
  std::atomic<std::int64_t> waiting{-1};  // the round whose waiter is about to wait
  std::atomic<std::int64_t> acquired{-1}; // the last round whose waiter got the lock
  std::atomic<std::int64_t> released_at{0};
  std::atomic<pid_t> pids[2];
  std::atomic<bool> started{false}; // side 0 holds the lock for round 0
};

/// One side of the ping-pong. Side 0 holds first; round r is held by side
/// r % 2 and waited for by the other.
void play(Kind kind, const std::string& path, int self, std::int64_t rounds, PingPong* shared,
          std::int64_t* latencies) {
  BenchLock lock(kind, path);
  bool holding = false;
  const auto wait_and_take = [&](std::int64_t round) {
    shared->waiting.store(round);
    lock.acquire();
    latencies[round] = monotonic_ns() - shared->released_at.load();
    shared->acquired.store(round);
    holding = true;
  };
  if (self == 0) {
    lock.acquire();
    holding = true;
    shared->started.store(true);
  } else {
    wait_for([&] { return shared->started.load(); });
    wait_and_take(0);
  }
  for (std::int64_t round = self; round < rounds; round += 2) {
    // Holding for `round`: let the other side queue, then release.
    const pid_t other = shared->pids[1 - self].load();
    wait_for([&] { return shared->waiting.load() == round; });
    wait_for([&] { return sleeping(other); });
    shared->released_at.store(monotonic_ns());
    lock.release();
    holding = false;
    // Wait until the other side has the lock before queueing again: a
    // release does not hand the lock over, and we could take it back first.
    wait_for([&] { return shared->acquired.load() == round; });
    if (round + 1 < rounds) {
      wait_and_take(round + 1);
    }
  }
  if (holding) {
    lock.release();
  }
}

/// Runs the calling process on `cpu` alone; a negative cpu leaves it free.
void pin_to(int cpu) {
  if (cpu < 0) {
    return;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    die("cannot run on CPU " + std::to_string(cpu) + ": " + std::strerror(errno));
  }
}

int pingpong(Kind kind, const std::string& path, std::int64_t rounds, int cpu_a, int cpu_b) {
  // Kind::slot: the other slot, held by an open file of its own that both
  // sides inherit, so that one slot is left to pass between them.
  std::optional<BenchLock> other_slot;
  if (kind == Kind::slot) {
    other_slot.emplace(kind, path);
    other_slot->acquire();
  }
  auto* shared = new (shared_memory<PingPong>()) PingPong;
  auto* latencies = shared_memory<std::int64_t>(static_cast<std::size_t>(rounds));
  shared->pids[0].store(getpid());
  shared->pids[1].store(0);
  const pid_t child = fork();
  if (child < 0) {
    die(std::string("fork: ") + std::strerror(errno));
  }
  if (child == 0) {
    pin_to(cpu_b);
    shared->pids[1].store(getpid());
    play(kind, path, 1, rounds, shared, latencies);
    std::_Exit(0);
  }
  shared->pids[1].store(child);
  pin_to(cpu_a);
  play(kind, path, 0, rounds, shared, latencies);
  wait_for_exit(child);
  for (std::int64_t i = 0; i < rounds; ++i) {
    std::printf("%lld\n", static_cast<long long>(latencies[i]));
  }
  return 0;
}

struct Crowd {
  std::atomic<int> ready{0};
  std::atomic<int> next{0};
  std::atomic<std::int64_t> released_at{0};
};

int many(Kind kind, const std::string& path, int count) {
  if (kind == Kind::slot) {
    die("slot is for pingpong only");
  }
  auto* shared = new (shared_memory<Crowd>()) Crowd;
  auto* acquired_at = shared_memory<std::int64_t>(static_cast<std::size_t>(count));
  BenchLock lock(kind, path);
  lock.acquire();
  std::vector<pid_t> children;
  children.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const pid_t child = fork();
    if (child < 0) {
      die(std::string("fork: ") + std::strerror(errno));
    }
    if (child == 0) {
      // The parent's open lock file came along with fork; this one is ours.
      BenchLock mine(kind, path);
      shared->ready.fetch_add(1);
      mine.acquire();
      acquired_at[shared->next.fetch_add(1)] = monotonic_ns();
      mine.release();
      std::_Exit(0);
    }
    children.push_back(child);
  }
  wait_for([&] { return shared->ready.load() == count; });
  for (const pid_t child : children) {
    wait_for([&] { return sleeping(child); });
  }
  const std::int64_t released_at = monotonic_ns();
  lock.release();
  for (const pid_t child : children) {
    wait_for_exit(child);
  }
  std::printf("total %lld\n", static_cast<long long>(acquired_at[count - 1] - released_at));
  std::int64_t previous = released_at;
  for (int i = 0; i < count; ++i) {
    std::printf("%lld\n", static_cast<long long>(acquired_at[i] - previous));
    previous = acquired_at[i];
  }
  return 0;
}

int usage() {
  std::fputs("usage: bench-handoff pingpong fasten|flock|ofd LOCKFILE ROUNDS [CPU_A CPU_B]\n"
             "       bench-handoff many fasten|flock|ofd LOCKFILE N\n",
             stderr);
  return 64;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 7) {
    return usage();
  }
  const std::string what = argv[1];
  const Kind kind = parse_kind(argv[2]);
  const std::string path = argv[3];
  char* end = nullptr;
  const long long count = std::strtoll(argv[4], &end, 10);
  if (*end != '\0' || count < 1 || count > 100'000) {
    return usage();
  }
  if (what == "pingpong") {
    const int cpu_a = argc == 7 ? std::atoi(argv[5]) : -1;
    const int cpu_b = argc == 7 ? std::atoi(argv[6]) : -1;
    return pingpong(kind, path, count, cpu_a, cpu_b);
  }
  if (what == "many" && argc == 5) {
    return many(kind, path, static_cast<int>(count));
  }
  return usage();
}
