// fasten: run a command while holding an inter-process lock. The work is in
// the library (src/lock) and in running the command (src/run); this file only
// turns the outcome into a line on stderr and an exit status.

#include <exception>

#include "cli/diagnostics.h"
#include "cli/lock-command.h"
#include "cli/options.h"
#include "run/exit-codes.h"
#include "run/spawn.h"

int main(int argc, char** argv) {
  using namespace fasten;
  try {
    const auto parsed = cli::parse_command_line(run::utf8_arguments(argc, argv));
    if (!parsed.options) {
      cli::write_output(parsed.output);
      if (!parsed.error.empty()) {
        cli::report_error(parsed.error);
      }
      return parsed.exit_status;
    }
    return cli::run_lock_command(*parsed.options);
  } catch (const cli::Failure& failure) {
    cli::report_error(failure.what());
    return failure.exit_status();
  } catch (const std::exception& error) {
    cli::report_error(error.what());
    return exit_code::k_os_error;
  }
}
