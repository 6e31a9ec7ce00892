// bench-helper: the small, statically linked program that scripts/bench runs
// as (or around) the command under a lock. It starts in a fraction of the
// time a dynamically linked program takes, so what it adds to a measurement is
// small, and it adds the same to every contender.
//
//   bench-helper clock          prints CLOCK_MONOTONIC in ns: when it started
//   bench-helper clock --wait   prints "ready", waits for a byte on stdin,
//                               then prints CLOCK_MONOTONIC in ns and exits
//                               (a lock holder whose exit the driver times)
//   bench-helper loop N CMD...  runs CMD N times, one after the other, and
//                               exits 1 if any run failed
//
// Only C library calls, so that the static binary stays small.

#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace {

long long monotonic_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<long long>(now.tv_sec) * 1'000'000'000LL + now.tv_nsec;
}

/// Writes all of `text` to stdout with write(2): no stdio buffer to flush.
void say(const char* text) {
  size_t left = std::strlen(text);
  while (left > 0) {
    const ssize_t done = write(STDOUT_FILENO, text, left);
    if (done < 0 && errno == EINTR) {
      continue;
    }
    if (done <= 0) {
      _exit(3);
    }
    text += done;
    left -= static_cast<size_t>(done);
  }
}

int clock_command(bool wait) {
  if (wait) {
    say("ready\n");
    char byte = 0;
    ssize_t got;
    do {
      got = read(STDIN_FILENO, &byte, 1);
    } while (got < 0 && errno == EINTR);
  }
  // The stamp is the last thing (first thing, without --wait) the command
  // does; printing it costs a few microseconds at most.
  const long long stamp = monotonic_ns();
  char line[32];
  std::snprintf(line, sizeof line, "%lld\n", stamp);
  say(line);
  return 0;
}

int loop_command(long count, char** argv) {
  int failures = 0;
  for (long i = 0; i < count; ++i) {
    pid_t child = 0;
    const int error = posix_spawn(&child, argv[0], nullptr, nullptr, argv, environ);
    if (error != 0) {
      std::fprintf(stderr, "bench-helper: cannot run %s: %s\n", argv[0], std::strerror(error));
      return 1;
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}

int usage() {
  std::fputs("usage: bench-helper clock [--wait] | loop N CMD [ARG...]\n", stderr);
  return 64;
}

} // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "clock") == 0) {
    if (argc == 2) {
      return clock_command(false);
    }
    if (argc == 3 && std::strcmp(argv[2], "--wait") == 0) {
      return clock_command(true);
    }
    return usage();
  }
  if (argc >= 4 && std::strcmp(argv[1], "loop") == 0) {
    char* end = nullptr;
    const long count = std::strtol(argv[2], &end, 10);
    if (*end != '\0' || count < 0) {
      return usage();
    }
    return loop_command(count, argv + 3);
  }
  return usage();
}
