#include "etcd/queue.h"

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <set>

#include "etcd/url.h"

namespace fasten::etcd {

namespace {

std::string lease_hex(std::int64_t lease) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%" PRIx64, static_cast<std::uint64_t>(lease));
  return hex;
}

/// A whole number from 0 up, and nothing else; std::nullopt otherwise.
std::optional<int> whole_number(std::string_view text) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty() || value < 0) {
    return std::nullopt;
  }
  return value;
}

std::optional<int> int_member(const Json& value, const char* name) {
  if (value.is_object() && value.contains(name) && value[name].is_number_integer()) {
    return value[name].get<int>();
  }
  return std::nullopt;
}

/// A string member, or "" where there is none (Json::value throws where
/// there is one of another type: another program wrote the value).
std::string string_member(const Json& value, const char* name) {
  const auto found = value.find(name);
  return found != value.end() && found->is_string() ? found->get<std::string>() : std::string();
}

/// A key's holder and its N, from the key's value.
struct KeyHolder {
  LockHolder holder;
  std::optional<int> slots;
};

KeyHolder key_holder_of(const KeyValue& kv) {
  KeyHolder holding;
  // `etcdctl lock` stores nothing with its key.
  const auto value = Json::parse(kv.value, nullptr, false);
  if (value.is_object()) {
    holding.holder.pid = int_member(value, "pid");
    holding.holder.command = string_member(value, "command");
    holding.holder.host = string_member(value, "host");
    holding.holder.slot = int_member(value, "slot");
    holding.slots = int_member(value, "slots");
  }
  return holding;
}

WatchRequest deletion_of(const std::string& key, std::int64_t read_at) {
  return {.key = key, .start_revision = read_at + 1};
}

/// A slot key: the newest older writer's deletion; none while fewer than
/// N older slot keys are left; then, first in line, the deletion of any
/// slot key; behind another waiter with the same N, its claim or its
/// deletion. (Behind a waiter with another N, whose claim may come later
/// than this one's turn, it watches every slot key too.)
std::optional<WatchRequest> slot_wait(const std::string& name, int slots, const std::vector<KeyValue>& older,
                                      std::int64_t read_at) {
  std::vector<const KeyValue*> older_slots;
  for (const auto& kv : older) {
    const auto kind = kind_of(name, kv.key);
    if (kind == KeyKind::writer) {
      return deletion_of(kv.key, read_at);
    }
    if (kind == KeyKind::slot) {
      older_slots.push_back(&kv);
    }
  }
  if (older_slots.size() < static_cast<std::size_t>(slots)) {
    return std::nullopt;
  }
  const KeyValue& ahead = *older_slots.front();
  if (older_slots.size() > static_cast<std::size_t>(slots) && key_holder_of(ahead).slots == slots) {
    return WatchRequest{.key = ahead.key, .start_revision = read_at + 1, .puts_too = true};
  }
  const auto prefix = slot_prefix(name);
  return WatchRequest{.key = prefix, .range_end = prefix_end(prefix), .start_revision = read_at + 1};
}

/// Whether a key of `kind` holds the lock, after `writers` writers' keys and
/// `others` other keys older than it (claims left out). A slot key holds
/// once it has claimed its slot, which its value then says.
bool holds(KeyKind kind, const KeyHolder& holding, int writers, int others) {
  switch (kind) {
  case KeyKind::writer:
    return writers == 0 && others == 0;
  case KeyKind::reader:
    return writers == 0;
  case KeyKind::slot:
    return writers == 0 && holding.holder.slot.has_value();
  case KeyKind::slot_claim:
    break;
  }
  return false;
}

} // namespace

std::string queue_prefix(const std::string& name) {
  return name + "/";
}

KeyKind kind_of(const std::string& name, const std::string& key) {
  const auto prefix = queue_prefix(name);
  if (key.starts_with(prefix + "read/")) {
    return KeyKind::reader;
  }
  if (key.starts_with(slot_prefix(name))) {
    return KeyKind::slot;
  }
  if (key.starts_with(slot_claim_prefix(name))) {
    return KeyKind::slot_claim;
  }
  return KeyKind::writer;
}

std::string queue_key(const std::string& name, KeyKind kind, std::int64_t lease) {
  switch (kind) {
  case KeyKind::reader:
    return queue_prefix(name) + "read/" + lease_hex(lease);
  case KeyKind::slot:
    return slot_prefix(name) + lease_hex(lease);
  case KeyKind::writer:
  case KeyKind::slot_claim:
    break;
  }
  return queue_prefix(name) + lease_hex(lease);
}

std::string slot_prefix(const std::string& name) {
  return queue_prefix(name) + "slot/";
}

std::string slot_claim_prefix(const std::string& name) {
  return queue_prefix(name) + "slot-claim/";
}

std::string slot_claim_key(const std::string& name, int slot) {
  return slot_claim_prefix(name) + std::to_string(slot);
}

std::string mark_prefix(const std::string& name) {
  return name + std::string(k_etcd_marks_suffix) + "/";
}

std::string mark_key(const std::string& name, const std::string& key) {
  return mark_prefix(name) + key.substr(std::min(key.size(), queue_prefix(name).size()));
}

std::string mark_value(std::chrono::seconds ttl) {
  return Json{{"ttl", ttl.count()}}.dump();
}

namespace {

bool any_kind(KeyKind) {
  return true;
}

bool writer_kind(KeyKind kind) {
  return kind == KeyKind::writer;
}

} // namespace

bool slot_kind(KeyKind kind) {
  return kind == KeyKind::slot;
}

bool (*excluding(KeyKind kind))(KeyKind) {
  return kind == KeyKind::writer ? any_kind : writer_kind;
}

namespace {

/// The TTL a mark stores, as its holder's --ttl allows it (1 … 86400 s):
/// `fallback` for a value that says none, the longest a holder can have for
/// one that says more.
std::chrono::seconds stored_ttl(const std::string& mark_value, std::chrono::seconds fallback) {
  constexpr std::uint64_t k_longest = 86400;
  const auto value = Json::parse(mark_value, nullptr, false);
  // Whole numbers from 0 up read as unsigned, and may not fit a signed one.
  if (!value.is_object() || !value.contains("ttl") || !value["ttl"].is_number_unsigned()) {
    return fallback;
  }
  const auto ttl = value["ttl"].get<std::uint64_t>();
  return ttl == 0 ? fallback : std::chrono::seconds(std::min(ttl, k_longest));
}

} // namespace

Vanished vanished(const std::string& name, const std::vector<KeyValue>& keys, const std::vector<KeyValue>& marks,
                  bool (*matter)(KeyKind), std::chrono::seconds fallback) {
  std::set<std::string> present;
  for (const auto& kv : keys) {
    present.insert(kv.key);
  }
  Vanished gone;
  const auto prefix = mark_prefix(name);
  for (const auto& mark : marks) {
    if (!mark.key.starts_with(prefix)) {
      continue;
    }
    const auto key = queue_prefix(name) + mark.key.substr(prefix.size());
    if (present.contains(key) || !matter(kind_of(name, key))) {
      continue;
    }
    gone.holders.push_back({.key = key, .mark = mark, .ttl = stored_ttl(mark.value, fallback)});
    gone.ttl = std::max(gone.ttl, gone.holders.back().ttl);
  }
  return gone;
}

std::string holder_value(const HolderValue& holder) {
  Json value = {{"host", holder.host}, {"pid", holder.pid}, {"command", holder.command}};
  if (holder.slots) {
    value["slots"] = *holder.slots;
  }
  if (holder.slot) {
    value["slot"] = *holder.slot;
  }
  return value.dump();
}

std::optional<WatchRequest> what_to_wait_for(const std::string& name, KeyKind kind, int slots,
                                             const std::vector<KeyValue>& older, std::int64_t read_at) {
  if (kind == KeyKind::slot) {
    return slot_wait(name, slots, older, read_at);
  }
  // A writer waits for the newest older key of any kind, a reader for the
  // newest older writer's.
  for (const auto& kv : older) {
    if (kind == KeyKind::writer || kind_of(name, kv.key) == KeyKind::writer) {
      return deletion_of(kv.key, read_at);
    }
  }
  return std::nullopt;
}

std::optional<SlotChoice> choose_slot(const std::string& name, const std::vector<KeyValue>& claims, int slots,
                                      std::int64_t lease) {
  std::set<int> taken;
  for (const auto& kv : claims) {
    // A key that is not a claim may be shorter than the claims' prefix.
    if (kind_of(name, kv.key) != KeyKind::slot_claim) {
      continue;
    }
    const auto slot = whole_number(std::string_view(kv.key).substr(slot_claim_prefix(name).size()));
    if (!slot) {
      continue;
    }
    if (kv.lease == lease) {
      return SlotChoice{.slot = *slot, .claimed = true};
    }
    taken.insert(*slot);
  }
  for (int slot = 0; slot < slots; ++slot) {
    if (!taken.contains(slot)) {
      return SlotChoice{.slot = slot};
    }
  }
  return std::nullopt;
}

namespace {

bool holder_kind(KeyKind kind) {
  return kind != KeyKind::slot_claim;
}

VanishedHolder::Kind vanished_kind(KeyKind kind) {
  switch (kind) {
  case KeyKind::reader:
    return VanishedHolder::Kind::reader;
  case KeyKind::slot:
    return VanishedHolder::Kind::slot;
  case KeyKind::writer:
  case KeyKind::slot_claim:
    break;
  }
  return VanishedHolder::Kind::writer;
}

/// Whether a writer or reader key created at `revision`, whose turn has
/// come, still waits out one of the vanished holders `gone` that queued
/// before it. (A slot key holds once it claimed its slot, which it does
/// only after it waited them out; except where another slot holder claimed
/// that slot and vanished between its read of the claims and its claim,
/// which it then waits out with its claim made, counted here as holding.)
bool outwaits(const std::string& name, KeyKind kind, std::int64_t revision, const Vanished& gone) {
  return kind != KeyKind::slot && std::ranges::any_of(gone.holders, [&](const Vanished::Holder& holder) {
           return holder.mark.create_revision < revision && excluding(kind)(kind_of(name, holder.key));
         });
}

} // namespace

LockStatus status_from_keys(const std::string& name, const std::vector<KeyValue>& keys,
                            const std::vector<KeyValue>& marks, std::chrono::seconds fallback) {
  LockStatus status;
  const auto gone = vanished(name, keys, marks, holder_kind, fallback);
  for (const auto& holder : gone.holders) {
    status.vanished.push_back({.kind = vanished_kind(kind_of(name, holder.key)), .ttl = holder.ttl});
  }
  int writers = 0;
  int others = 0;
  for (const auto& kv : keys) {
    const auto kind = kind_of(name, kv.key);
    if (kind == KeyKind::slot_claim) {
      continue;
    }
    const auto holding = key_holder_of(kv);
    if (!holds(kind, holding, writers, others) || outwaits(name, kind, kv.create_revision, gone)) {
      ++status.waiting;
    } else {
      status.state = kind == KeyKind::writer ? LockState::exclusive : LockState::shared;
      status.holders.push_back(holding.holder);
      if (kind == KeyKind::slot) {
        ++status.slots_held;
        status.slots = std::max(status.slots, holding.slots.value_or(0));
      }
    }
    (kind == KeyKind::writer ? writers : others) += 1;
  }
  status.holds = static_cast<int>(status.holders.size());
  return status;
}

} // namespace fasten::etcd
