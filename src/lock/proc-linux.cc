#include "lock/proc-linux.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

ProcDirectory::ProcDirectory(const std::string& path)
    : m_directory(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
}

std::optional<std::string_view> ProcDirectory::next() {
  for (;;) {
    if (m_offset >= m_size) {
      if (!opened()) {
        return std::nullopt;
      }
      ssize_t got = 0;
      do {
        got = ::getdents64(m_directory.get(), m_buffer.data(), m_buffer.size());
      } while (got < 0 && errno == EINTR);
      if (got <= 0) {
        return std::nullopt;
      }
      m_size = static_cast<std::size_t>(got);
      m_offset = 0;
    }
    // The kernel aligns each record to 8 bytes within the buffer.
    const auto* entry = reinterpret_cast<const dirent64*>(m_buffer.data() + m_offset);
    m_offset += entry->d_reclen;
    const std::string_view name(entry->d_name, ::strnlen(entry->d_name, sizeof entry->d_name));
    if (name != "." && name != "..") {
      return name;
    }
  }
}

} // namespace fasten
