#include "run/exit-status.h"

#include "run/exit-codes.h"

namespace fasten::run {

int ExitStatus::shell_status() const noexcept {
  return signaled() ? exit_code::k_signal_base + m_signal : m_code;
}

} // namespace fasten::run
