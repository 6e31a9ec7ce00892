#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "run/program.h"

namespace fasten::run {

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

} // namespace fasten::run
