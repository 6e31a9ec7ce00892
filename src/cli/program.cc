#include "cli/program.h"

#include <exception>

#include "cli/diagnostics.h"
#include "cli/failure.h"
#include "run/exit-codes.h"
#include "run/program.h"
#include "run/spawn.h"

namespace fasten::cli {

int run_program(int argc, char** argv, const std::function<int(const LockOptions&)>& act) {
  if (!run::fill_standard_descriptors()) {
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
