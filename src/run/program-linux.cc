#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "lock/file-handle.h"
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

void fill_standard_descriptors() noexcept {
  for (int standard = 0; standard <= 2; ++standard) {
    if (fcntl(standard, F_GETFD) >= 0 || errno != EBADF) {
      continue;
    }
    // open takes the lowest free number, which is this one: the lower ones
    // are open by now. It stays open for the life of the process, as a
    // standard descriptor does: no FileHandle closes it.
    FileHandle null(open("/dev/null", standard == 0 ? O_RDONLY : O_WRONLY));
    if (null.get() != standard) {
      return; // no /dev/null: nothing better to put there
    }
    (void)null.release();
  }
}

} // namespace fasten::run
