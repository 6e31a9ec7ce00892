#pragma once

#include <string>

namespace fasten {

/// What kind of thing went wrong: the command line maps each to its own exit
/// status, a library user to its own recovery.
enum class ErrorKind {
  /// The lock file could not be opened or created.
  open,
  /// The lock file could not be created, or opened for writing, because its
  /// file system is read-only or full.
  create,
  /// The lock call itself was refused, e.g. an exclusive lock on a directory or
  /// on a descriptor not open for writing.
  lock,
  /// The lock object was used in a way locks do not allow: acquiring it again
  /// while it is held (locks are not reentrant) or asking a held shared lock
  /// for exclusive (locks are not upgradeable).
  misuse,
  /// The operating system failed or ran out of something (no locks left,
  /// no timers).
  system,
  /// A remote lock service (etcd) could not be reached, or answered with
  /// something it should not have.
  unavailable,
  /// A remote lock, or its place in the queue, was lost: its lease expired or
  /// was revoked, or its key was deleted.
  lost,
  /// A remote lock service refused the credentials, or the role they give
  /// (etcd's authentication).
  denied,
  /// The command to run is not there (the shell's 127).
  not_found,
  /// The command is there but cannot be run (the shell's 126).
  not_executable,
};

/// A failure, with what was being done, the path or value it concerned and
/// the system's error number (0 when there is none): errno on POSIX,
/// GetLastError() on Windows.
class Error {
public:
  Error(ErrorKind kind, std::string what, std::string subject, int sys_errno = 0);
  /// For errors that come with their own explanation instead of an errno
  /// (a remote service's answer, an HTTP library's message).
  Error(ErrorKind kind, std::string what, std::string subject, std::string detail);
  /// A failure to run `command`, worded as the shell words it: the command
  /// first ("make: command not found").
  [[nodiscard]] static Error of_command(ErrorKind kind, std::string command, std::string what,
                                        int sys_errno = 0);

  ErrorKind kind() const noexcept { return m_kind; }
  const std::string& what() const noexcept { return m_what; }
  const std::string& subject() const noexcept { return m_subject; }
  int sys_errno() const noexcept { return m_errno; }

  /// What explains the failure instead of an errno; empty when there is none.
  const std::string& detail() const noexcept { return m_detail; }

  /// Whether the subject is a command, named first (of_command).
  bool names_command_first() const noexcept { return m_command_first; }

  /// "<what>: <subject>: <system error or detail>", the last part only when
  /// there is one; "<subject>: <what>: ..." for a command.
  std::string message() const;

private:
  ErrorKind m_kind;
  std::string m_what;
  std::string m_subject;
  int m_errno;
  std::string m_detail;
  bool m_command_first = false;
};

/// The system's text for an error number of this platform (strerror on POSIX,
/// FormatMessage on Windows), as UTF-8 on one line.
[[nodiscard]] std::string system_message(int sys_errno);

} // namespace fasten
