#include "cli/status-command.h"

#include <algorithm>

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

bool listed(const std::vector<LockHolder>& holders, std::optional<int> pid) {
  return pid && std::ranges::any_of(holders, [&](const LockHolder& holder) { return holder.pid == pid; });
}

/// "pid 4212 (backup.sh) in slot 0 under fasten pid 4211", or "a process that cannot be seen"
std::string hold_text(const HoldName& hold) {
  if (!hold.pid) {
    return "a process that cannot be seen";
  }
  std::string text = "pid " + std::to_string(*hold.pid);
  if (!hold.host.empty()) {
    text += " on " + escape_text(hold.host);
  }
  if (!hold.command.empty()) {
    text += " (" + escape_text(hold.command) + ")";
  }
  if (hold.slot) {
    text += " in slot " + std::to_string(*hold.slot);
  }
  if (hold.fasten_pid) {
    text += " under fasten pid " + std::to_string(*hold.fasten_pid);
  }
  return text;
}

/// "pid 4211 (backup.sh), pid 4212 (sh) and a process that cannot be seen"
std::string joined_holds(const std::vector<HoldName>& holds) {
  std::string text;
  for (size_t i = 0; i < holds.size(); ++i) {
    text += (i == 0 ? "" : i + 1 == holds.size() ? " and " : ", ") + hold_text(holds[i]);
  }
  return text;
}

/// [{"pid": 4211, "command": "backup.sh"}, ...]
std::string holders_json(const std::vector<LockHolder>& holders) {
  std::string json = "[";
  for (size_t i = 0; i < holders.size(); ++i) {
    const auto& holder = holders[i];
    json += i == 0 ? "" : ", ";
    json += "{\"pid\": " + (holder.pid ? std::to_string(*holder.pid) : std::string("null")) +
            ", \"command\": " + (holder.command.empty() ? std::string("null") : json_string(holder.command)) +
            (holder.host.empty() ? std::string() : ", \"host\": " + json_string(holder.host)) +
            (holder.slot ? ", \"slot\": " + std::to_string(*holder.slot) : std::string()) + "}";
  }
  return json + "]";
}

const char* kind_name(VanishedHolder::Kind kind, bool plural) {
  switch (kind) {
  case VanishedHolder::Kind::reader:
    return plural ? "readers" : "reader";
  case VanishedHolder::Kind::slot:
    return plural ? "slot holders" : "slot holder";
  case VanishedHolder::Kind::writer:
    break;
  }
  return plural ? "writers" : "writer";
}

/// "; 2 holders vanished without letting go (a writer and a reader): whoever
/// they exclude waits out their longest TTL (30 s) before going in"
std::string vanished_text(const std::vector<VanishedHolder>& vanished) {
  std::vector<std::string> kinds;
  std::chrono::seconds ttl{0};
  for (const auto kind :
       {VanishedHolder::Kind::writer, VanishedHolder::Kind::reader, VanishedHolder::Kind::slot}) {
    const auto count = std::ranges::count(vanished, kind, &VanishedHolder::kind);
    if (count > 0) {
      kinds.push_back((count == 1 ? std::string("a") : std::to_string(count)) + " " +
                      kind_name(kind, count > 1));
    }
  }
  for (const auto& holder : vanished) {
    ttl = std::max(ttl, holder.ttl);
  }
  std::string text = "; " + std::to_string(vanished.size()) +
                     (vanished.size() == 1 ? " holder" : " holders") + " vanished without letting go (";
  for (size_t i = 0; i < kinds.size(); ++i) {
    text += (i == 0 ? "" : i + 1 == kinds.size() ? " and " : ", ") + kinds[i];
  }
  return text +
         (vanished.size() == 1 ? "): whoever it excludes waits out its TTL ("
                               : "): whoever they exclude waits out their longest TTL (") +
         std::to_string(ttl.count()) + " s) before going in";
}

/// [{"kind": "writer", "ttl": 30}, ...]
std::string vanished_json(const std::vector<VanishedHolder>& vanished) {
  std::string json = "[";
  for (size_t i = 0; i < vanished.size(); ++i) {
    const auto kind = vanished[i].kind;
    json += std::string(i == 0 ? "" : ", ") + "{\"kind\": \"" +
            (kind == VanishedHolder::Kind::slot ? "slot" : kind_name(kind, false)) +
            "\", \"ttl\": " + std::to_string(vanished[i].ttl.count()) + "}";
  }
  return json + "]";
}

/// Whether `command` is a fasten's: its program is fasten (or fasten-etcd),
/// whose child is the command it runs. A shell that locked a descriptor of
/// its own (--fd) and started a child that inherited it is not one.
bool is_fasten(const std::string& command) {
  const std::string program = command.substr(0, command.find(' '));
  const std::string name = program.substr(program.rfind('/') + 1);
  return name == "fasten" || name == "fasten-etcd";
}

} // namespace

std::vector<HoldName> name_holds(const std::vector<LockHolder>& holders) {
  std::vector<HoldName> holds;
  for (const auto& holder : holders) {
    const bool local = holder.pid && holder.host.empty();
    if (local && listed(holders, holder.parent)) {
      continue; // the command of a hold already named, or that command's own child
    }
    HoldName hold{holder.pid, holder.command, std::nullopt, holder.host, holder.slot};
    // A holding fasten is named by the command it runs; any other holder
    // by itself, its children folded in.
    const auto child = std::ranges::find_if(
        holders, [&](const LockHolder& other) { return local && other.pid && other.parent == holder.pid; });
    if (child != holders.end() && is_fasten(holder.command)) {
      hold = HoldName{child->pid, child->command, holder.pid, {}, holder.slot ? holder.slot : child->slot};
    }
    holds.push_back(std::move(hold));
  }
  return holds;
}

std::string describe_status(const std::string& path, const LockStatus& status) {
  return escape_text(path) + ": " + describe_holders(status);
}

std::string describe_state(const LockStatus& status) {
  std::string text = state_name(status.state);
  if (status.slots_held > 0) {
    // "3 of 4 slots held", and the readers that share the lock with them.
    // (Slot holders that wait for the lock with their slot hold no slot.)
    text = std::to_string(status.slots_held) + " of " + std::to_string(status.slots) + " slots held";
    const int readers = status.holds - status.slots_held;
    if (status.state == LockState::shared && readers > 0) {
      text += " and shared by " + std::to_string(readers);
    }
  } else if (status.state == LockState::shared) {
    text += " by " + std::to_string(status.holds);
  }
  return text;
}

std::string describe_holders(const LockStatus& status) {
  std::string text = describe_state(status);
  if (!status.holders.empty()) {
    const bool slots_alone = status.slots_held > 0 && status.holds <= status.slots_held;
    text += (slots_alone ? " by " : ", held by ") + joined_holds(name_holds(status.holders));
  }
  if (status.waiting > 0) {
    text += "; " + std::to_string(status.waiting) + " waiting";
  }
  if (!status.vanished.empty()) {
    text += vanished_text(status.vanished);
  }
  if (!status.flock_holders.empty()) {
    text += "; also locked with flock(2) by " + joined_holds(name_holds(status.flock_holders)) +
            ": fasten does not exclude flock(1)";
  }
  return text;
}

std::string status_json(const std::string& path, const LockStatus& status) {
  std::string json = "{\"path\": " + json_string(path) + ", \"state\": \"" + state_name(status.state) +
                     "\", \"holds\": " + std::to_string(status.holds) +
                     ", \"holders\": " + holders_json(status.holders);
  json += ", \"waiting\": " + std::to_string(status.waiting);
  // Only for a counting semaphore that is in use.
  if (status.slots > 0) {
    json += ", \"slots\": " + std::to_string(status.slots) +
            ", \"slots_held\": " + std::to_string(status.slots_held);
  }
  // Only when there are any: flock(2) locks are not fasten's.
  if (!status.flock_holders.empty()) {
    json += ", \"flock_holders\": " + holders_json(status.flock_holders);
  }
  // Only when there are any: etcd locks' holders that vanished without letting go.
  if (!status.vanished.empty()) {
    json += ", \"vanished\": " + vanished_json(status.vanished);
  }
  return json + "}";
}

int run_status(const std::string& path, bool json, const Backend& backend, const BackendOptions& options) {
  auto queried = backend.status(path, options);
  if (!queried && json) {
    // A script that reads JSON gets JSON, with the exit status and the line on stderr as ever.
    write_output("{\"path\": " + json_string(path) +
                 ", \"error\": " + json_string(error_line(queried.error())) + "}\n");
  }
  const LockStatus status = value_or_fail(std::move(queried));
  const std::string text = json ? status_json(path, status) : describe_status(path, status);
  write_output(text + "\n");
  return status.state == LockState::free ? 0 : 1;
}

} // namespace fasten::cli
