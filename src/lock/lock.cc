#include "lock/lock.h"

#include "lock/lock-platform.h"
#include "lock/nesting.h"
#include "lock/process-locks.h"
#include "lock/protocol.h"

namespace fasten {

Result<LockFile> LockFile::open(std::filesystem::path path, const OpenOptions& options) {
  if (options.create_mode && !files_have_permission_bits()) {
    return Error(ErrorKind::misuse, "permission bits for a new lock file mean nothing on this system",
                 path.string());
  }
  auto file = FASTEN_TRY(platform::open_lock_file(path, options));
  auto lock = FASTEN_TRY(make(std::move(path), std::move(file)));
  lock.m_handed_to_commands = options.handed_to_commands;
  return lock;
}

Result<LockFile> LockFile::adopt(NativeHandle descriptor, std::string name) {
  FASTEN_TRY(platform::check_descriptor(descriptor, name));
  return make(std::move(name), FileHandle(descriptor));
}

Result<LockFile> LockFile::make(std::filesystem::path path, FileHandle file) {
  FASTEN_TRY(platform::check_lockable(file.get(), path.string()));
  LockFile lock(std::move(path), std::move(file));
  if (!locks_belong_to_open_files()) {
    lock.m_process_file = FASTEN_TRY(platform::file_id(lock.m_file.get(), lock.m_path.string()));
  }
  return lock;
}

LockFile::LockFile(std::filesystem::path path, FileHandle file) noexcept
    : m_path(std::move(path)), m_file(std::move(file)) {
}

LockFile::LockFile(LockFile&& other) noexcept
    : m_process_file(other.m_process_file), m_path(std::move(other.m_path)), m_file(std::move(other.m_file)),
      m_held(std::exchange(other.m_held, std::nullopt)), m_slot(std::exchange(other.m_slot, std::nullopt)),
      m_slots(std::exchange(other.m_slots, 1)), m_handed_to_commands(other.m_handed_to_commands) {
}

LockFile& LockFile::operator=(LockFile&& other) noexcept {
  if (this != &other) {
    close();
    m_process_file = other.m_process_file;
    m_path = std::move(other.m_path);
    m_file = std::move(other.m_file);
    m_held = std::exchange(other.m_held, std::nullopt);
    m_slot = std::exchange(other.m_slot, std::nullopt);
    m_slots = std::exchange(other.m_slots, 1);
    m_handed_to_commands = other.m_handed_to_commands;
  }
  return *this;
}

LockFile::~LockFile() {
  close();
}

void LockFile::close() noexcept {
  release_quietly();
  if (m_process_file && m_file.valid()) {
    // Closing a descriptor drops every lock the process holds on the file,
    // those of other LockFile objects included: let the table decide when.
    ProcessLocks::instance().close(*m_process_file, std::move(m_file));
  }
  m_file.reset();
}

void LockFile::release_quietly() noexcept {
  if (m_held) {
    // Closing the descriptor would drop the lock too, but not while a child
    // still shares the open file: unlock explicitly.
    (void)release();
  }
}

Result<bool> LockFile::is_named_by_its_path() const {
  const auto named = FASTEN_TRY(platform::path_file_id(m_path));
  if (!named) {
    return false;
  }
  return *named == FASTEN_TRY(platform::file_id(m_file.get(), m_path.string()));
}

Result<FileId> LockFile::id() const {
  return platform::file_id(m_file.get(), m_path.string());
}

void LockFile::abandon() noexcept {
  m_held.reset();
  m_slot.reset();
  (void)m_file.release();
}

Result<void> unlock_open_file(NativeHandle descriptor, const std::string& name) {
  FASTEN_TRY(platform::check_descriptor(descriptor, name));
  return platform::byte_locks().unlock_protocol(descriptor, name);
}

Result<Outcome> LockFile::acquire(LockMode mode, Timeout timeout) {
  if (m_held == LockMode::shared && mode == LockMode::exclusive) {
    return Error(ErrorKind::misuse, "a shared lock cannot be upgraded to exclusive", m_path.string());
  }
  if (m_held) {
    return Error(ErrorKind::misuse, "the lock is already held by this object (locks are not reentrant)",
                 m_path.string());
  }
  const auto lock = [&](Timeout left) {
    return protocol::acquire(platform::byte_locks(), m_file.get(), mode, Deadline(left), m_path);
  };
  auto outcome = acquire_in_process(mode, timeout, lock);
  if (outcome && outcome.value() == Outcome::acquired) {
    m_held = mode;
  }
  return outcome;
}

Result<std::optional<int>> LockFile::acquire_slot(int slots, Timeout timeout) {
  if (slots < 1 || slots > protocol::k_max_slots) {
    return Error(ErrorKind::misuse,
                 "a lock has from 1 to " + std::to_string(protocol::k_max_slots) + " slots, not " +
                     std::to_string(slots),
                 m_path.string());
  }
  if (slots == 1) {
    const Outcome outcome = FASTEN_TRY(acquire(LockMode::exclusive, timeout));
    m_slot = outcome == Outcome::acquired ? std::optional<int>(0) : std::nullopt;
    return m_slot;
  }
  if (m_held) {
    return Error(ErrorKind::misuse, "the lock is already held by this object (locks are not reentrant)",
                 m_path.string());
  }
  std::optional<int> slot;
  const auto lock = [&](Timeout left) -> Result<Outcome> {
    slot = FASTEN_TRY(
        protocol::acquire_slot(platform::byte_locks(), m_file.get(), slots, Deadline(left), m_path));
    return slot ? Outcome::acquired : Outcome::timed_out;
  };
  // Exclusive within the process, where the kernel sees one holder for it.
  const Outcome outcome = FASTEN_TRY(acquire_in_process(LockMode::exclusive, timeout, lock));
  if (outcome == Outcome::acquired) {
    m_held = LockMode::exclusive;
    m_slot = slot;
    m_slots = slots;
  }
  return m_slot;
}

Result<Outcome> LockFile::acquire_in_process(LockMode mode, Timeout timeout,
                                             const std::function<Result<Outcome>(Timeout)>& lock) {
  if (!m_process_file) {
    return lock(timeout);
  }
  const auto writer_waiting = [&] {
    return protocol::writer_waiting(platform::byte_locks(), m_file.get(), m_path);
  };
  return ProcessLocks::instance().acquire(*m_process_file, mode, timeout, lock, writer_waiting);
}

Result<void> LockFile::release() {
  if (!m_held) {
    return Error(ErrorKind::misuse, "the lock is not held", m_path.string());
  }
  const auto unlock = [&] {
    if (m_slots > 1) {
      return protocol::release_slot(platform::byte_locks(), m_file.get(), *m_slot, m_slots, m_path);
    }
    // A command that inherited this open file may have run fasten again on
    // the lock, which re-entered this hold (nesting.h): it ends first.
    if (m_held == LockMode::exclusive && m_handed_to_commands && !m_process_file &&
        nested_holds_supported()) {
      return protocol::release_after_nested(platform::byte_locks(), m_file.get(), m_path);
    }
    return protocol::release(platform::byte_locks(), m_file.get(), m_path);
  };
  auto released =
      m_process_file ? ProcessLocks::instance().release(*m_process_file, *m_held, unlock) : unlock();
  // Held no more either way: after a failed unlock the state is unknown, and
  // a retry must not count this object's hold twice.
  m_held.reset();
  m_slot.reset();
  m_slots = 1;
  return released;
}

LockGuard::~LockGuard() {
  if (m_lock != nullptr && m_lock->held()) {
    (void)m_lock->release();
  }
}

Result<std::optional<LockGuard>> acquire_guard(LockFile& lock, LockMode mode, Timeout timeout) {
  const Outcome outcome = FASTEN_TRY(lock.acquire(mode, timeout));
  if (outcome == Outcome::timed_out) {
    return std::optional<LockGuard>();
  }
  return std::optional<LockGuard>(std::in_place, lock);
}

} // namespace fasten
