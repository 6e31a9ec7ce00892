#include "run/dispositions-linux.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <string_view>

#include "lock/file-handle.h"

namespace fasten::run {

namespace {

/// The signals of a mask as /proc/PID/status prints it (hex, bit N-1 for
/// signal N), from the line that starts with `name`; false when it is not there.
bool mask_of(std::string_view status, std::string_view name, sigset_t& set) {
  const auto at = status.find(name);
  if (at == std::string_view::npos) {
    return false;
  }
  const std::string_view digits = status.substr(at + name.size());
  std::uint64_t mask = 0;
  const auto parsed = std::from_chars(digits.data(), digits.data() + digits.size(), mask, 16);
  // The whole line, up to its newline: not one that the read cut short.
  if (parsed.ec != std::errc() || parsed.ptr == digits.data() + digits.size() || *parsed.ptr != '\n') {
    return false;
  }
  sigemptyset(&set);
  for (int signal = 1; signal < NSIG && signal <= 64; ++signal) {
    if ((mask >> (signal - 1)) & 1U) {
      sigaddset(&set, signal); // refuses glibc's own signals
    }
  }
  return true;
}

} // namespace

std::optional<Dispositions> dispositions_from_procfs() {
  const FileHandle file(open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  if (!file.valid()) {
    return std::nullopt;
  }
  // SigIgn and SigCgt come within the first kilobyte or so (a long list of
  // Groups before them may push them past the end: then sigaction is asked).
  char text[2048];
  size_t size = 0;
  ssize_t got;
  while (size < sizeof text && (got = read(file.get(), text + size, sizeof text - size)) != 0) {
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return std::nullopt;
    }
    size += static_cast<size_t>(got);
  }
  const std::string_view status(text, size);
  Dispositions found{};
  if (!mask_of(status, "\nSigIgn:\t", found.ignored) || !mask_of(status, "\nSigCgt:\t", found.caught)) {
    return std::nullopt;
  }
  return found;
}

Dispositions dispositions_by_asking() {
  Dispositions found{};
  sigemptyset(&found.ignored);
  sigemptyset(&found.caught);
  for (int signal = 1; signal < NSIG; ++signal) {
    struct sigaction current {};
    // Fails for glibc's own signals, which are then in neither set.
    if (sigaction(signal, nullptr, &current) != 0 || current.sa_handler == SIG_DFL) {
      continue;
    }
    sigaddset(current.sa_handler == SIG_IGN ? &found.ignored : &found.caught, signal);
  }
  return found;
}

Dispositions current_dispositions() {
  if (auto found = dispositions_from_procfs()) {
    return *found;
  }
  return dispositions_by_asking();
}

} // namespace fasten::run
