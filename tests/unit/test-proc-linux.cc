#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <string>
#include <vector>

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

namespace {

/// The names in `path` as readdir(3) lists them, "." and ".." left out.
std::set<std::string> readdir_names(const std::string& path) {
  std::set<std::string> names;
  DIR* directory = opendir(path.c_str());
  REQUIRE(directory != nullptr);
  while (const dirent* entry = readdir(directory)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") {
      names.insert(name);
    }
  }
  closedir(directory);
  return names;
}

/// Those of `names` that are descriptors open now: the one that read a
/// directory of them is listed there, and closed since.
std::set<std::string> open_now(const std::set<std::string>& names) {
  std::set<std::string> open;
  for (const auto& name : names) {
    if (fcntl(std::stoi(name), F_GETFD) != -1) {
      open.insert(name);
    }
  }
  return open;
}

} // namespace

TEST_CASE("a procfs directory lists what readdir lists, past one buffer's worth") {
  // 300 descriptors more: some 7 kB of records, several buffers' worth.
  std::vector<FileHandle> extra;
  for (int i = 0; i < 300; ++i) {
    extra.emplace_back(open("/dev/null", O_RDONLY | O_CLOEXEC));
    REQUIRE(extra.back().valid());
  }
  const std::string path = "/proc/self/fdinfo";
  std::set<std::string> listed;
  ProcDirectory directory(path);
  REQUIRE(directory.opened());
  while (const auto name = directory.next()) {
    CHECK(listed.insert(std::string(*name)).second);
  }
  const auto expected = open_now(readdir_names(path));
  CHECK(listed.size() >= 300);
  CHECK(open_now(listed) == expected);
  CHECK(listed.count(".") == 0);
  CHECK(listed.count("..") == 0);
}

TEST_CASE("a procfs directory that cannot be opened lists nothing") {
  ProcDirectory directory("/proc/self/no-such-directory");
  CHECK_FALSE(directory.opened());
  CHECK_FALSE(directory.next().has_value());
}
