#include "cli/failure.h"

#include "cli/escape.h"
#include "run/exit-codes.h"

namespace fasten::cli {

int exit_status_for(const Error& error) {
  switch (error.kind()) {
  case ErrorKind::open:
    return exit_code::k_no_input;
  case ErrorKind::create:
    return exit_code::k_cannot_create;
  case ErrorKind::lock:
  case ErrorKind::misuse:
    return exit_code::k_lock_failed;
  case ErrorKind::unavailable:
    return exit_code::k_unavailable;
  case ErrorKind::lost:
    return exit_code::k_lock_lost;
  case ErrorKind::denied:
    return exit_code::k_no_permission;
  case ErrorKind::not_found:
    return exit_code::k_not_found;
  case ErrorKind::not_executable:
    return exit_code::k_not_executable;
  case ErrorKind::system:
    break;
  }
  return exit_code::k_os_error;
}

std::string error_line(const Error& error) {
  // The subject is a path, a URL or a value that somebody else may have
  // chosen, and the detail may quote one (a link's target, a server's answer).
  const std::string subject = escape_text(error.subject());
  std::string text = error.names_command_first() ? subject + ": " + error.what() : error.what();
  if (!error.names_command_first() && !subject.empty()) {
    text += ": " + subject;
  }
  if (error.sys_errno() != 0) {
    text += ": " + system_message(error.sys_errno());
  } else if (!error.detail().empty()) {
    text += ": " + escape_text(error.detail());
  }
  return text;
}

Failure failure_of(const Error& error) {
  return Failure(exit_status_for(error), error_line(error));
}

} // namespace fasten::cli
