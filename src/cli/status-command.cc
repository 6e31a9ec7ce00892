#include "cli/status-command.h"

#include <cstdlib>

#include "cli/diagnostics.h"
#include "cli/escape.h"
#include "cli/failure.h"
#include "lock/backend.h"

namespace fasten::cli {

namespace {

const char* state_name(LockState state) {
  switch (state) {
  case LockState::shared:
    return "shared";
  case LockState::exclusive:
    return "exclusive";
  case LockState::free:
    break;
  }
  return "free";
}

} // namespace

std::string describe_status(const std::string& path, const LockStatus& status) {
  return escape_text(path) + ": " + describe_holders(status);
}

std::string describe_holders(const LockStatus& status) {
  std::string text = state_name(status.state);
  if (status.state == LockState::shared) {
    text += " by " + std::to_string(status.holds);
  }
  if (!status.holders.empty()) {
    text += ", held by ";
    for (size_t i = 0; i < status.holders.size(); ++i) {
      const auto& holder = status.holders[i];
      text += i == 0 ? "" : i + 1 == status.holders.size() ? " and " : ", ";
      if (!holder.pid) {
        text += "a process that cannot be seen";
        continue;
      }
      text += "pid " + std::to_string(*holder.pid);
      if (!holder.host.empty()) {
        text += " on " + escape_text(holder.host);
      }
      if (!holder.command.empty()) {
        text += " (" + escape_text(holder.command) + ")";
      }
    }
  }
  if (status.waiting > 0) {
    text += "; " + std::to_string(status.waiting) + " waiting";
  }
  return text;
}

std::string status_json(const std::string& path, const LockStatus& status) {
  std::string json =
      "{\"path\": " + json_string(path) + ", \"state\": \"" + state_name(status.state) +
      "\", \"holds\": " + std::to_string(status.holds) + ", \"holders\": [";
  for (size_t i = 0; i < status.holders.size(); ++i) {
    const auto& holder = status.holders[i];
    json += i == 0 ? "" : ", ";
    json += "{\"pid\": " + (holder.pid ? std::to_string(*holder.pid) : std::string("null")) +
            ", \"command\": " + (holder.command.empty() ? std::string("null") : json_string(holder.command)) +
            (holder.host.empty() ? std::string() : ", \"host\": " + json_string(holder.host)) + "}";
  }
  return json + "], \"waiting\": " + std::to_string(status.waiting) + "}";
}

int run_status(const std::string& path, bool json) {
  const char* endpoints = std::getenv("FASTEN_ETCD_ENDPOINTS");
  BackendOptions options;
  options.remote.default_endpoints = endpoints != nullptr ? endpoints : "";
  const LockStatus status = value_or_fail(query_lock_status(path, options));
  const std::string text = json ? status_json(path, status) : describe_status(path, status);
  write_output(text + "\n");
  return status.state == LockState::free ? 0 : 1;
}

} // namespace fasten::cli
