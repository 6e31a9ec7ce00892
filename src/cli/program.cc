#include "cli/program.h"

#include <cerrno>
#include <exception>
#include <string>

#include "cli/diagnostics.h"
#include "cli/failure.h"
#include "run/exit-codes.h"
#include "run/program.h"
#include "run/spawn.h"

namespace fasten::cli {

namespace {

/// --fd N, or unlock --fd N, for a standard descriptor that fasten was
/// started with closed: the /dev/null in its place is fasten's own, so N is
/// not open, as for any other closed N (a lock on it would lock nothing
/// that the caller holds).
void refuse_filled_descriptor(const LockOptions& options, const run::FilledDescriptors& standard) {
  const bool by_fd = options.action == LockOptions::Action::lock_descriptor ||
                     options.action == LockOptions::Action::unlock_descriptor;
  if (by_fd && options.fd && *options.fd >= 0 && *options.fd <= 2 &&
      standard.filled.at(static_cast<size_t>(*options.fd))) {
    throw failure_of(
        Error(ErrorKind::open, "cannot use descriptor", "descriptor " + std::to_string(*options.fd), EBADF));
  }
}

} // namespace

int run_program(int argc, char** argv, const std::function<int(const LockOptions&)>& act) {
  const auto standard = run::fill_standard_descriptors();
  if (!standard.ok) {
    // stderr itself may be the one closed: then this line goes nowhere.
    report_error("a standard descriptor (0, 1 or 2) is closed and /dev/null cannot be opened in its place; "
                 "start fasten with them open");
    return exit_code::k_os_error;
  }
  try {
    const auto parsed = parse_command_line(run::utf8_arguments(argc, argv));
    if (!parsed.options) {
      write_output(parsed.output);
      if (!parsed.error.empty()) {
        report_error(parsed.error);
      }
      return parsed.exit_status;
    }
    refuse_filled_descriptor(*parsed.options, standard);
    return act(*parsed.options);
  } catch (const Failure& failure) {
    report_error(failure.what());
    return failure.exit_status();
  } catch (const std::exception& error) {
    report_error(error.what());
    return exit_code::k_os_error;
  }
}

} // namespace fasten::cli
