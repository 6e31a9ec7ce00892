#include "lock/error.h"

namespace fasten {

Error::Error(ErrorKind kind, std::string what, std::string subject, int sys_errno)
    : m_kind(kind), m_what(std::move(what)), m_subject(std::move(subject)), m_errno(sys_errno) {
}

Error::Error(ErrorKind kind, std::string what, std::string subject, std::string detail)
    : m_kind(kind), m_what(std::move(what)), m_subject(std::move(subject)), m_errno(0),
      m_detail(std::move(detail)) {
}

Error Error::of_command(ErrorKind kind, std::string command, std::string what, int sys_errno) {
  Error error(kind, std::move(what), std::move(command), sys_errno);
  error.m_command_first = true;
  return error;
}

std::string Error::message() const {
  std::string text = m_command_first ? m_subject + ": " + m_what : m_what;
  if (!m_command_first && !m_subject.empty()) {
    text += ": " + m_subject;
  }
  if (m_errno != 0) {
    text += ": " + system_message(m_errno);
  } else if (!m_detail.empty()) {
    text += ": " + m_detail;
  }
  return text;
}

} // namespace fasten
