#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>

#include "lock/file-handle.h"
#include "lock/proc-linux.h"
#include "run/program.h"

namespace fasten::run {

std::vector<std::string> utf8_arguments(int argc, char** argv) {
  return std::vector<std::string>(argv, argv + argc);
}

std::filesystem::path running_program() {
  std::error_code error;
  // The file itself, whatever PATH or a symlink to it said.
  auto file = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::filesystem::path() : file;
}

int exec_program(const std::filesystem::path& file, char** argv) {
  execv(file.c_str(), argv);
  return errno;
}

FilledDescriptors fill_standard_descriptors() noexcept {
  FilledDescriptors result;
  for (int standard = 0; standard <= 2; ++standard) {
    if (fcntl(standard, F_GETFD) >= 0 || errno != EBADF) {
      continue;
    }
    // open takes the lowest free number, which is this one: the lower ones
    // are open by now. It stays open for the life of the process, as a
    // standard descriptor does: no FileHandle closes it.
    FileHandle null(open("/dev/null", (standard == 0 ? O_RDONLY : O_WRONLY) | O_NOCTTY));
    if (null.get() != standard) {
      result.ok = false; // no /dev/null (a bare chroot)
      return result;
    }
    (void)null.release();
    result.filled.at(static_cast<size_t>(standard)) = true;
  }
  return result;
}

std::optional<int> parent_of(int pid) {
  const auto stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
  const auto end_of_comm = stat ? stat.value().rfind(')') : std::string::npos;
  if (end_of_comm == std::string::npos || stat.value().size() < end_of_comm + 4) {
    return std::nullopt;
  }
  return std::atoi(stat.value().c_str() + end_of_comm + 3);
}

std::vector<int> ancestor_pids() {
  std::vector<int> pids;
  std::optional<int> pid = getppid();
  // A chain of parents ends at pid 1 (or 0 across a pid namespace); a
  // process that ends on the way ends it early.
  while (pid && *pid > 1 && pids.size() < 4096) {
    pids.push_back(*pid);
    pid = parent_of(*pid);
  }
  return pids;
}

} // namespace fasten::run
