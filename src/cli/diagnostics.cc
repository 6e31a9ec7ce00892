#include "cli/diagnostics.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/escape.h"
#include "cli/failure.h"
#include "run/exit-codes.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace fasten::cli {

namespace {

bool g_verbose = false;

/// Made on first use: a run that prints nothing pays nothing for it. The
/// sink takes a mutex: -v's reminder says its lines from a thread of its own
/// while the main thread may say one (a lock replaced while it waited).
spdlog::logger& logger() {
  static auto instance = [] {
    auto made = std::make_shared<spdlog::logger>("fasten", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    made->set_pattern("%n: %v");
    made->set_level(spdlog::level::info);
    made->flush_on(spdlog::level::info);
    return made;
  }();
  return *instance;
}

} // namespace

// Every line is escaped here, whoever built it: a path, a link's target or
// a command line that a caller forgot to escape still cannot act on the
// terminal or forge a line of its own.
void report_error(std::string_view message) {
  logger().error(escape_controls(message));
}

void enable_verbose() {
  g_verbose = true;
}

bool verbose_enabled() {
  return g_verbose;
}

void verbose_line(std::string_view message) {
  logger().info(escape_controls(message));
}

void write_output(std::string_view text) {
  // Flushed here, not at exit, where a failure would go unnoticed.
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    throw Failure(exit_code::k_io_error, std::string("cannot write the output: ") + std::strerror(errno));
  }
}

} // namespace fasten::cli
