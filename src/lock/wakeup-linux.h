#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "lock/file-handle.h"

namespace fasten {

/// A descriptor that one thread makes readable to wake another from poll(2)
/// (a lease keeper, a signal watcher, a command's wait): an eventfd, never
/// drained, so a wake-up stays given. The one such waker of fasten's.
class Wakeup {
public:
  Wakeup() noexcept : m_event(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), m_error(m_event.valid() ? 0 : errno) {}

  /// False when the system gave no descriptor (error() says why): then
  /// nothing can be woken.
  bool valid() const noexcept { return m_event.valid(); }
  int error() const noexcept { return m_error; }
  /// What to poll for POLLIN.
  int descriptor() const noexcept { return m_event.get(); }

  void wake() noexcept {
    const std::uint64_t one = 1;
    (void)!write(m_event.get(), &one, sizeof one);
  }

private:
  FileHandle m_event;
  int m_error;
};

} // namespace fasten
