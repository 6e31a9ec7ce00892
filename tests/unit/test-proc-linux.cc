#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "lock/proc-linux.h"

using namespace fasten;

namespace {

/// A child process that waits to be killed.
pid_t start_child() {
  const pid_t child = fork();
  if (child == 0) {
    for (;;) {
      pause();
    }
  }
  return child;
}

void end_child(pid_t child) {
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
}

} // namespace

TEST_CASE("a procfs file of a process that ends before it is read is gone, not an exception") {
  const pid_t child = start_child();
  REQUIRE(child > 0);
  const std::string path = "/proc/" + std::to_string(child) + "/cmdline";
  const FileHandle file(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(file.valid());
  end_child(child);

  // Open before the process ended, read after: the read fails with ESRCH.
  const auto text = read_all(file, path);
  REQUIRE_FALSE(text.ok());
  CHECK(text.error().sys_errno() == ESRCH);
  // Opened after: there is no such file.
  const auto again = read_proc_file(path);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().sys_errno() == ENOENT);
}

TEST_CASE("a procfs file is read whole, beyond one read's worth") {
  const auto text = read_proc_file("/proc/self/maps");
  REQUIRE(text.ok());
  CHECK(text->size() > 4096);
  CHECK(text->find("unit-tests") != std::string::npos);
  const auto missing = read_proc_file("/proc/self/no-such-file");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message().find("/proc/self/no-such-file") != std::string::npos);
}
