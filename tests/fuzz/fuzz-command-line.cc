// fasten's command line (options.h): any argv, split from the input at each
// NUL, gives options to act on or an exit status with a message, never a
// crash, an exception or a hang. Options that come out are checked: a
// command to run unless the action is another, a mode, a conflict status
// that fits in an exit status.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/options.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // argv[0], then the words of the input.
  std::vector<std::string> args{"fasten"};
  std::string word;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == '\0') {
      args.push_back(word);
      word.clear();
    } else {
      word += static_cast<char>(data[i]);
    }
  }
  if (size > 0) {
    args.push_back(word);
  }
  const auto parsed = fasten::cli::parse_command_line(args);
  if (parsed.exit_status < 0 || parsed.exit_status > 255) {
    std::abort();
  }
  if (parsed.options) {
    const auto& options = *parsed.options;
    using Action = fasten::cli::LockOptions::Action;
    if (parsed.exit_status != 0 || (options.action == Action::run_command && options.command.empty()) ||
        options.conflict_exit_code < 0 || options.conflict_exit_code > 255 ||
        (options.slots && *options.slots < 1)) {
      std::abort();
    }
  } else if (parsed.exit_status == 0 && parsed.output.empty()) {
    std::abort(); // neither options nor --help or --version
  }
  return 0;
}
