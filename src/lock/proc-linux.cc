#include "lock/proc-linux.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace fasten {

Result<std::string> read_all(const FileHandle& file, const std::string& path) {
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t got = ::read(file.get(), buffer, sizeof buffer);
    if (got > 0) {
      text.append(buffer, static_cast<std::size_t>(got));
    } else if (got == 0) {
      return text;
    } else if (errno != EINTR) {
      return Error(ErrorKind::system, "cannot read", path, errno);
    }
  }
}

Result<std::string> read_proc_file(const std::string& path) {
  const FileHandle file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file.valid()) {
    return Error(ErrorKind::system, "cannot read", path, errno);
  }
  return read_all(file, path);
}

} // namespace fasten
