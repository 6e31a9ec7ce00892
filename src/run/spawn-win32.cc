// Running the command on Windows: CreateProcessW, in a job object.
//
// The command line. Windows passes a program one string, which the program
// splits itself; nearly all do it as the Microsoft C runtime and
// CommandLineToArgvW do, so each argument is quoted by those rules. The one
// exception is cmd.exe, which reads its command after /c itself and knows
// nothing of backslash escapes: `-c STRING` runs `cmd.exe /d /s /c "STRING"`,
// whose /s has cmd drop the outer quotes and take STRING as written.
//
// The program is found as CreateProcessW finds it (no application name): in
// fasten's own directory, the current directory, the system directories,
// then PATH, with ".exe" added when the name has no extension.
//
// Dying with fasten. The command runs in a job object with
// JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE. fasten holds the only handle to the job,
// so when fasten dies, however it dies, the system closes it and ends the
// command and everything it started: the command never runs without the
// lock. It is created suspended and resumed only once it is in the job, so
// nothing it starts escapes. Once it has ended, the limit is lifted, so that
// what it left running in the background lives on as it would on POSIX.
//
// Ctrl-C and Ctrl-Break. The console sends them to every process attached to
// it, the command included. While fasten waits for the lock they end it at
// once (128 + SIGINT or SIGBREAK, like a signal on POSIX); once the command
// runs, fasten ignores them and exits with the command's status.

#include <windows.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>

#include "lock/text-win32.h"
#include "run/exit-codes.h"
#include "run/spawn.h"

namespace fasten::run {

namespace {

const std::vector<std::string> k_shell = {"cmd.exe", "/d", "/s", "/c"};

/// Whether fasten is still waiting for the lock, when a console event ends
/// it, or running the command, when it ignores them.
std::atomic<bool> g_command_running{false};

BOOL WINAPI on_console_event(DWORD event) {
  if (g_command_running) {
    return event == CTRL_C_EVENT || event == CTRL_BREAK_EVENT;
  }
  switch (event) {
  case CTRL_C_EVENT:
    ExitProcess(exit_code::k_signal_base + SIGINT);
  case CTRL_BREAK_EVENT:
    ExitProcess(exit_code::k_signal_base + SIGBREAK);
  case CTRL_CLOSE_EVENT:
    ExitProcess(exit_code::k_signal_base + 1); // SIGHUP, which Windows does not define
  default:
    return FALSE;
  }
}

/// One argument, quoted so that CommandLineToArgvW and the C runtime read it
/// back as it is: inside quotes, backslashes are literal except before a
/// quote, where each must be doubled and the quote escaped.
std::wstring quote(const std::wstring& argument) {
  if (!argument.empty() && argument.find_first_of(L" \t\n\v\"") == std::wstring::npos) {
    return argument;
  }
  std::wstring quoted = L"\"";
  size_t backslashes = 0;
  for (const wchar_t c : argument) {
    if (c == L'\\') {
      ++backslashes;
      continue;
    }
    if (c == L'"') {
      quoted.append(backslashes * 2 + 1, L'\\');
    } else {
      quoted.append(backslashes, L'\\');
    }
    backslashes = 0;
    quoted += c;
  }
  quoted.append(backslashes * 2, L'\\'); // before the closing quote
  return quoted + L"\"";
}

std::wstring command_line(const std::vector<std::string>& argv) {
  const bool shell =
      argv.size() == k_shell.size() + 1 && std::equal(k_shell.begin(), k_shell.end(), argv.begin());
  std::wstring line;
  for (size_t i = 0; i < argv.size(); ++i) {
    line += i == 0 ? L"" : L" ";
    line += shell && i + 1 == argv.size() ? L"\"" + to_utf16(argv[i]) + L"\"" : quote(to_utf16(argv[i]));
  }
  return line;
}

Error create_error(DWORD error, const std::string& command) {
  if (error == ERROR_FILE_NOT_FOUND || error == ERROR_PATH_NOT_FOUND || error == ERROR_INVALID_NAME) {
    return Error::of_command(ErrorKind::not_found, command, "command not found", 0);
  }
  return Error::of_command(ErrorKind::not_executable, command, "cannot execute", static_cast<int>(error));
}

Error system_error(const char* what, const std::string& command) {
  return Error::of_command(ErrorKind::system, command, what, static_cast<int>(GetLastError()));
}

} // namespace

std::vector<std::string> shell_command(const std::string& script) {
  auto argv = k_shell;
  argv.push_back(script);
  return argv;
}

void set_environment(const std::string& name, const std::string& value) {
  SetEnvironmentVariableW(to_utf16(name).c_str(), to_utf16(value).c_str());
}

void unset_environment(const std::string& name) {
  SetEnvironmentVariableW(to_utf16(name).c_str(), nullptr);
}

bool can_exec_in_place() noexcept {
  return false;
}

bool has_inherited_descriptors() noexcept {
  return false;
}

void end_on_termination_signals() {
  // An inherited "ignore Ctrl-C" (CREATE_NEW_PROCESS_GROUP, or a parent's
  // SetConsoleCtrlHandler(NULL, TRUE)) would pass on to the command too.
  SetConsoleCtrlHandler(nullptr, FALSE);
  SetConsoleCtrlHandler(on_console_event, TRUE);
}

// Only a lock that can be lost (etcd, which this build does not have) asks for
// a stop; a StopRequest holds no event here, so that the portable code can
// still make one.
struct StopRequest::Waker {};

StopRequest::StopRequest() = default;

StopRequest::~StopRequest() = default;

void StopRequest::share_with_keeper() noexcept {
}

void StopRequest::request() noexcept {
}

NativeHandle StopRequest::handle() const noexcept {
  return k_invalid_handle;
}

int StopRequest::error() const noexcept {
  return 0;
}

Result<Ended> run_and_wait(const CommandSpec& command) {
  const std::string& name = command.argv[0];
  if (command.stop != nullptr || command.own_process_group) {
    return Error::of_command(ErrorKind::system, name, "cannot be stopped on request on Windows", 0);
  }
  FileHandle job(CreateJobObjectW(nullptr, nullptr));
  if (!job.valid()) {
    return system_error("cannot start it (job object)", name);
  }
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits{};
  limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  if (!SetInformationJobObject(job.get(), JobObjectExtendedLimitInformation, &limits, sizeof limits)) {
    return system_error("cannot start it (job object limits)", name);
  }

  g_command_running = true;
  std::wstring line = command_line(command.argv);
  STARTUPINFOW startup{};
  startup.cb = sizeof startup;
  PROCESS_INFORMATION created{};
  // No handles inherited: the lock's handle stays fasten's (see CommandSpec).
  if (!CreateProcessW(nullptr, line.data(), nullptr, nullptr, FALSE, CREATE_SUSPENDED, nullptr, nullptr,
                      &startup, &created)) {
    return create_error(GetLastError(), name);
  }
  FileHandle process(created.hProcess);
  FileHandle thread(created.hThread);
  if (!AssignProcessToJobObject(job.get(), process.get())) {
    const auto error = system_error("cannot start it (assign to job object)", name);
    TerminateProcess(process.get(), 1);
    return error;
  }
  if (ResumeThread(thread.get()) == static_cast<DWORD>(-1)) {
    const auto error = system_error("cannot start it (resume)", name);
    TerminateProcess(process.get(), 1);
    return error;
  }
  DWORD code = 0;
  if (WaitForSingleObject(process.get(), INFINITE) != WAIT_OBJECT_0 ||
      !GetExitCodeProcess(process.get(), &code)) {
    return system_error("cannot wait for it", name);
  }
  limits.BasicLimitInformation.LimitFlags = 0;
  SetInformationJobObject(job.get(), JobObjectExtendedLimitInformation, &limits, sizeof limits);
  return Ended{ExitStatus::exited(static_cast<int>(code)), false};
}

Error exec_in_place(const CommandSpec& command) {
  return Error::of_command(ErrorKind::system, command.argv[0], "cannot run in place of fasten on Windows", 0);
}

} // namespace fasten::run
