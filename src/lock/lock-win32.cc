// Windows locks: LockFileEx on the two bytes of the protocol (protocol.h).
//
// Mandatory locks. While a range is locked, other handles cannot read it
// (exclusive lock) or write it (either lock). fasten's two bytes lie at 2^62,
// far past any real content, so the file's data stays free for every program;
// and the file is opened with every sharing flag, so fasten never stops anyone
// opening, reading, writing, renaming or deleting it.
//
// Whose lock. A LockFileEx lock belongs to the handle (the open file object)
// that took it, and excludes every other handle, in this process or another:
// two LockFile objects exclude each other as two processes do, so
// locks_belong_to_open_files() is true and no in-process bookkeeping is
// needed. The system drops a handle's locks when the handle is closed, and so
// when its process dies, however it dies. fasten does not hand the handle to
// the command (spawn-win32.cc puts the command in a job object instead).
//
// How a timed wait works. The file is opened FILE_FLAG_OVERLAPPED, so
// LockFileEx without LOCKFILE_FAIL_IMMEDIATELY does not block: it returns
// ERROR_IO_PENDING, and the system completes the request (sets the
// OVERLAPPED's event) when it grants the lock. WaitForSingleObject waits for
// the event with the time that is left; at the deadline CancelIoEx withdraws
// the request. The grant can race the cancel, so GetOverlappedResult (waiting)
// then says which won: a lock granted just as it was cancelled is ours. No
// polling, and each wait has its own event, so threads do not mix them up.
//
// The reader/writer protocol without F_GETLK. lock-linux.cc looks at the
// turnstile before it tries the data byte; Windows cannot see a lock without
// taking it, so here everyone passes through the turnstile:
//
//   k_turnstile  byte 2^62      exclusive for a writer on its way in, shared by readers on theirs
//   k_data       byte 2^62 + 1  the lock itself: shared by readers, exclusive for a writer
//
//  - A writer takes k_turnstile exclusive (waiting), then k_data exclusive
//    (waiting), then releases k_turnstile.
//  - A reader takes k_turnstile shared (waiting), then k_data shared
//    (waiting), then releases k_turnstile.
//  - Release unlocks k_data, the only byte still held.
//
// Readers hold the turnstile, together, only while they get k_data, so readers
// that arrive with no writer about pass at once. A writer gets the turnstile
// between those moments and holds it while it waits for k_data: every reader
// that comes after it queues at the turnstile, and the writer gets in once the
// readers inside have left, within the longest single read hold. Readers
// queued behind a writer's hold keep the turnstile shared, which keeps the
// next writer out until they are in. The ranges are always taken in the same
// order, so fasten processes cannot deadlock one another, and a crash at any
// step leaves nothing held. The uncontended case costs three calls.
//
// UnlockFile must name exactly a range that was locked, so the bytes are
// locked and unlocked one by one, never as one range of two.

#include <windows.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "lock/deadline.h"
#include "lock/lock-platform.h"
#include "lock/protocol.h"
#include "lock/text-win32.h"

namespace fasten {

void FileHandle::reset(NativeHandle handle) noexcept {
  if (m_handle != k_invalid_handle) {
    CloseHandle(m_handle);
  }
  m_handle = handle;
}

NativeHandle handle_from_number(int number) noexcept {
  return reinterpret_cast<NativeHandle>(static_cast<std::intptr_t>(number));
}

std::string system_message(int sys_errno) {
  wchar_t* buffer = nullptr;
  const DWORD length = FormatMessageW(
      FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
      static_cast<DWORD>(sys_errno), 0, reinterpret_cast<wchar_t*>(&buffer), 0, nullptr);
  std::wstring text = length > 0 ? std::wstring(buffer, length) : std::wstring();
  LocalFree(buffer);
  while (!text.empty() &&
         (text.back() == L'\n' || text.back() == L'\r' || text.back() == L' ' || text.back() == L'.')) {
    text.pop_back();
  }
  return (text.empty() ? std::string("error") : to_utf8(text)) + " (Windows error " +
         std::to_string(sys_errno) + ")";
}

bool locks_belong_to_open_files() noexcept {
  return true;
}

bool files_have_permission_bits() noexcept {
  return false;
}

namespace {

constexpr std::int64_t k_turnstile = protocol::k_turnstile;
constexpr std::int64_t k_data = protocol::k_data;

/// For WaitForSingleObject: INFINITE, or the milliseconds left, rounded up
/// so that a wait never ends before the deadline.
DWORD milliseconds_left(const Deadline& deadline) {
  if (deadline.is_forever()) {
    return INFINITE;
  }
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline.left()).count();
  return static_cast<DWORD>(std::clamp<long long>(left, 0, INFINITE - 1));
}

std::string utf8(const std::filesystem::path& path) {
  return to_utf8(path.native());
}

Error lock_error(DWORD error, const std::filesystem::path& path) {
  if (error == ERROR_NOT_ENOUGH_MEMORY || error == ERROR_NO_SYSTEM_RESOURCES ||
      error == ERROR_NOT_ENOUGH_QUOTA) {
    return Error(ErrorKind::system, "cannot lock (no resources left)", utf8(path), static_cast<int>(error));
  }
  return Error(ErrorKind::lock, "cannot lock", utf8(path), static_cast<int>(error));
}

OVERLAPPED at(std::int64_t offset, HANDLE event) {
  OVERLAPPED overlapped{};
  overlapped.Offset = static_cast<DWORD>(offset & 0xffffffff);
  overlapped.OffsetHigh = static_cast<DWORD>(offset >> 32);
  overlapped.hEvent = event;
  return overlapped;
}

/// Wine (8.0 at least) does not queue an overlapped LockFileEx that has to
/// wait: it returns ERROR_IO_PENDING and never completes it ("Async I/O lock
/// wait not implemented"). Under Wine alone, waits are therefore a try every
/// few milliseconds until the deadline; real Windows waits in the kernel.
bool overlapped_lock_waits_work() {
  static const bool work = GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version") == nullptr;
  return work;
}

/// One try without waiting.
Result<Outcome> try_once(HANDLE file, std::int64_t offset, DWORD exclusive,
                         const std::filesystem::path& path) {
  OVERLAPPED overlapped = at(offset, nullptr);
  if (LockFileEx(file, exclusive | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &overlapped)) {
    return Outcome::acquired;
  }
  const DWORD error = GetLastError();
  if (error == ERROR_LOCK_VIOLATION) {
    return Outcome::timed_out;
  }
  if (error == ERROR_IO_PENDING) {
    // Not expected with LOCKFILE_FAIL_IMMEDIATELY, but then the request is
    // the system's until it completes: wait for the verdict.
    DWORD transferred = 0;
    if (GetOverlappedResult(file, &overlapped, &transferred, TRUE)) {
      return Outcome::acquired;
    }
    return GetLastError() == ERROR_LOCK_VIOLATION ? Result<Outcome>(Outcome::timed_out)
                                                  : lock_error(GetLastError(), path);
  }
  return lock_error(error, path);
}

Result<Outcome> retry_until(HANDLE file, std::int64_t offset, DWORD exclusive, const Deadline& deadline,
                            const std::filesystem::path& path) {
  DWORD pause = 1;
  while (true) {
    auto outcome = try_once(file, offset, exclusive, path);
    const DWORD left = milliseconds_left(deadline);
    if (!outcome || outcome.value() == Outcome::acquired || left == 0) {
      return outcome;
    }
    Sleep(std::min(pause, left));
    pause = std::min<DWORD>(pause * 2, 10);
  }
}

/// Takes one byte: a try, then (unless the deadline says one try) a wait in
/// the kernel until the deadline.
Result<Outcome> take(HANDLE file, std::int64_t offset, LockMode mode, const Deadline& deadline,
                     const std::filesystem::path& path) {
  const DWORD exclusive = mode == LockMode::exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0;
  auto first = try_once(file, offset, exclusive, path);
  if (!first || first.value() == Outcome::acquired || deadline.is_one_try()) {
    return first;
  }
  if (!overlapped_lock_waits_work()) {
    return retry_until(file, offset, exclusive, deadline, path);
  }

  FileHandle event(CreateEventW(nullptr, TRUE, FALSE, nullptr));
  if (event.get() == nullptr) {
    (void)event.release();
    return Error(ErrorKind::system, "cannot create an event to wait for the lock", utf8(path),
                 static_cast<int>(GetLastError()));
  }
  OVERLAPPED overlapped = at(offset, event.get());
  if (LockFileEx(file, exclusive, 0, 1, 0, &overlapped)) {
    return Outcome::acquired;
  }
  if (GetLastError() != ERROR_IO_PENDING) {
    return lock_error(GetLastError(), path);
  }
  const DWORD waited = WaitForSingleObject(event.get(), milliseconds_left(deadline));
  const DWORD wait_error = GetLastError();
  if (waited != WAIT_OBJECT_0) {
    CancelIoEx(file, &overlapped);
  }
  // Settles the race between the grant and the cancel, and waits until the
  // system is done with `overlapped` and the event, which are about to go.
  DWORD transferred = 0;
  if (GetOverlappedResult(file, &overlapped, &transferred, TRUE)) {
    return Outcome::acquired;
  }
  const DWORD error = GetLastError();
  if (waited == WAIT_FAILED) {
    return Error(ErrorKind::system, "cannot wait for the lock", utf8(path), static_cast<int>(wait_error));
  }
  if (error == ERROR_OPERATION_ABORTED) {
    return Outcome::timed_out;
  }
  return lock_error(error, path);
}

void unlock_byte(HANDLE file, std::int64_t offset) {
  UnlockFile(file, static_cast<DWORD>(offset & 0xffffffff), static_cast<DWORD>(offset >> 32), 1, 0);
}

// Counting semaphores (lock_slot): the bytes of lock-linux.cc. Slot i is byte
// k_slots + i, exclusive; then k_slot_counts + N shared, and k_data shared
// by the readers' protocol, so that a writer drains slot holders. Windows
// cannot look at a lock without taking it, so every slot waiter passes
// through k_slot_queue, exclusive: the one that holds it tries every slot,
// and then waits on all of them at once, an overlapped LockFileEx each, for
// the first that is granted; the others are cancelled, and any granted in
// the meantime is given back. Waiters after it queue for k_slot_queue.
// WaitForMultipleObjects takes at most MAXIMUM_WAIT_OBJECTS events: with
// more slots than that, and under Wine, whose overlapped lock waits never
// complete, the waiter tries every slot again every few milliseconds.

std::int64_t slot_byte(int slot) {
  return protocol::k_slots + slot;
}

/// Takes the first free slot without waiting.
Result<std::optional<int>> try_slots(HANDLE file, int slots, const std::filesystem::path& path) {
  for (int slot = 0; slot < slots; ++slot) {
    const Outcome outcome = FASTEN_TRY(try_once(file, slot_byte(slot), LOCKFILE_EXCLUSIVE_LOCK, path));
    if (outcome == Outcome::acquired) {
      return std::optional<int>(slot);
    }
  }
  return std::optional<int>();
}

Result<std::optional<int>> retry_slots(HANDLE file, int slots, const Deadline& deadline,
                                       const std::filesystem::path& path) {
  DWORD pause = 1;
  while (true) {
    const auto slot = FASTEN_TRY(try_slots(file, slots, path));
    const DWORD left = milliseconds_left(deadline);
    if (slot || left == 0) {
      return slot;
    }
    Sleep(std::min(pause, left));
    pause = std::min<DWORD>(pause * 2, 10);
  }
}

/// An overlapped exclusive LockFileEx on every slot, each with its own event.
class SlotRequests {
public:
  SlotRequests(HANDLE file, int slots) : m_file(file), m_requests(static_cast<std::size_t>(slots)) {}
  SlotRequests(const SlotRequests&) = delete;
  SlotRequests& operator=(const SlotRequests&) = delete;
  ~SlotRequests() { settle(); }

  /// Queues a request on every slot; the error of the first that fails.
  Result<void> start(const std::filesystem::path& path) {
    for (std::size_t i = 0; i < m_requests.size(); ++i) {
      Request& request = m_requests[i];
      request.event = FileHandle(CreateEventW(nullptr, TRUE, FALSE, nullptr));
      if (request.event.get() == nullptr) {
        (void)request.event.release();
        return Error(ErrorKind::system, "cannot create an event to wait for a slot", utf8(path),
                     static_cast<int>(GetLastError()));
      }
      request.overlapped = at(slot_byte(static_cast<int>(i)), request.event.get());
      if (!LockFileEx(m_file, LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &request.overlapped) &&
          GetLastError() != ERROR_IO_PENDING) {
        return lock_error(GetLastError(), path);
      }
      request.queued = true;
    }
    return {};
  }

  /// Waits until one is granted or the deadline passes.
  Result<void> wait(const Deadline& deadline, const std::filesystem::path& path) {
    std::vector<HANDLE> events;
    for (const Request& request : m_requests) {
      events.push_back(request.event.get());
    }
    const DWORD waited = WaitForMultipleObjects(static_cast<DWORD>(events.size()), events.data(), FALSE,
                                                milliseconds_left(deadline));
    if (waited == WAIT_FAILED) {
      return Error(ErrorKind::system, "cannot wait for a slot", utf8(path), static_cast<int>(GetLastError()));
    }
    return {};
  }

  /// Cancels every request and settles each: the first granted is kept (its
  /// slot returned), any other granted is given back.
  std::optional<int> settle() {
    std::optional<int> kept;
    for (std::size_t i = 0; i < m_requests.size(); ++i) {
      Request& request = m_requests[i];
      if (!request.queued) {
        continue;
      }
      CancelIoEx(m_file, &request.overlapped);
      DWORD transferred = 0;
      const bool granted = GetOverlappedResult(m_file, &request.overlapped, &transferred, TRUE);
      request.queued = false;
      if (granted && !kept) {
        kept = static_cast<int>(i);
      } else if (granted) {
        unlock_byte(m_file, slot_byte(static_cast<int>(i)));
      }
    }
    return kept;
  }

private:
  struct Request {
    FileHandle event;
    OVERLAPPED overlapped{};
    bool queued = false;
  };
  HANDLE m_file;
  std::vector<Request> m_requests;
};

/// Any one slot, waiting up to the deadline; this waiter holds k_slot_queue.
Result<std::optional<int>> any_slot(HANDLE file, int slots, const Deadline& deadline,
                                    const std::filesystem::path& path) {
  const auto slot = FASTEN_TRY(try_slots(file, slots, path));
  if (slot || deadline.is_one_try()) {
    return slot;
  }
  if (!overlapped_lock_waits_work() || slots > MAXIMUM_WAIT_OBJECTS) {
    return retry_slots(file, slots, deadline, path);
  }
  SlotRequests requests(file, slots);
  auto started = requests.start(path);
  auto waited = started ? requests.wait(deadline, path) : Result<void>();
  const auto kept = requests.settle();
  if (kept) {
    return kept;
  }
  if (!started) {
    return started.error();
  }
  if (!waited) {
    return waited.error();
  }
  return std::optional<int>();
}

/// As flock(1) tells them apart on POSIX: out of handles or memory is the
/// system's failure, a read-only or full volume cannot take the file, and
/// the rest mean that LOCK cannot be used.
ErrorKind open_error_kind(DWORD error) {
  switch (error) {
  case ERROR_TOO_MANY_OPEN_FILES:
  case ERROR_NOT_ENOUGH_MEMORY:
  case ERROR_OUTOFMEMORY:
    return ErrorKind::system;
  case ERROR_WRITE_PROTECT:
  case ERROR_DISK_FULL:
  case ERROR_HANDLE_DISK_FULL:
    return ErrorKind::create;
  default:
    return ErrorKind::open;
  }
}

} // namespace

namespace platform {

Result<FileId> file_id(NativeHandle descriptor, const std::string& name) {
  BY_HANDLE_FILE_INFORMATION info{};
  if (!GetFileInformationByHandle(descriptor, &info)) {
    return Error(ErrorKind::open, "cannot use handle", name, static_cast<int>(GetLastError()));
  }
  return FileId{info.dwVolumeSerialNumber, (std::uint64_t{info.nFileIndexHigh} << 32) | info.nFileIndexLow};
}

Result<std::optional<FileId>> path_file_id(const std::filesystem::path& path) {
  // No access but to the attributes, and every sharing flag: looking must
  // stop nobody from opening, renaming or deleting the file.
  const DWORD sharing = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
  FileHandle file(CreateFileW(path.c_str(), FILE_READ_ATTRIBUTES, sharing, nullptr, OPEN_EXISTING,
                              FILE_FLAG_BACKUP_SEMANTICS, nullptr));
  if (!file.valid()) {
    const DWORD error = GetLastError();
    // A file deleted while others have it open is "delete pending" until the
    // last handle closes, and opening it fails with ERROR_ACCESS_DENIED
    // (though we opened it a moment ago): removed, for a new opener.
    if (error == ERROR_FILE_NOT_FOUND || error == ERROR_PATH_NOT_FOUND || error == ERROR_ACCESS_DENIED) {
      return std::optional<FileId>();
    }
    return Error(ErrorKind::open, "cannot look up lock file", utf8(path), static_cast<int>(error));
  }
  return std::optional<FileId>(FASTEN_TRY(file_id(file.get(), utf8(path))));
}

Result<void> check_lockable(NativeHandle descriptor, const std::string& name) {
  if (GetFileType(descriptor) == FILE_TYPE_PIPE) {
    return Error(ErrorKind::lock, "cannot be a lock", name,
                 std::string("it is a pipe, which no other process can open to lock; use a regular file"));
  }
  return {};
}

Result<void> check_descriptor(NativeHandle descriptor, const std::string& name) {
  if (GetFileType(descriptor) == FILE_TYPE_UNKNOWN && GetLastError() != NO_ERROR) {
    return Error(ErrorKind::open, "cannot use handle", name, static_cast<int>(GetLastError()));
  }
  return {};
}

Result<FileHandle> open_lock_file(const std::filesystem::path& path, const OpenOptions& options) {
  const DWORD attributes = GetFileAttributesW(path.c_str());
  if (attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY) != 0) {
    // LockFileEx locks byte ranges of files; a directory has none.
    return Error(ErrorKind::lock, "cannot lock a directory on Windows", utf8(path));
  }
  // Every sharing flag, and read access alone, which LockFileEx needs for
  // either lock: the lock must never stop another program from opening,
  // reading, writing, renaming or deleting the file, not even one that opens
  // it without FILE_SHARE_WRITE, as `type` does.
  const DWORD sharing = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
  FileHandle file(CreateFileW(path.c_str(), GENERIC_READ, sharing, nullptr,
                              options.create ? OPEN_ALWAYS : OPEN_EXISTING,
                              FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OVERLAPPED, nullptr));
  if (!file.valid()) {
    const DWORD error = GetLastError();
    return Error(open_error_kind(error), "cannot open lock file", utf8(path), static_cast<int>(error));
  }
  return file;
}

Result<Outcome> lock(NativeHandle file, LockMode mode, Timeout timeout, const std::filesystem::path& path) {
  const Deadline deadline(timeout);
  auto turnstile = take(file, k_turnstile, mode, deadline, path);
  if (!turnstile || turnstile.value() == Outcome::timed_out) {
    return turnstile;
  }
  auto outcome = take(file, k_data, mode, deadline, path);
  unlock_byte(file, k_turnstile);
  return outcome;
}

bool writer_waiting(NativeHandle) {
  // Only ProcessLocks asks, for locks that belong to the process; Windows
  // locks belong to the handle, so it never does.
  return false;
}

Result<std::optional<int>> lock_slot(NativeHandle file, int slots, Timeout timeout,
                                     const std::filesystem::path& path) {
  const Deadline deadline(timeout);
  const Outcome queued = FASTEN_TRY(take(file, protocol::k_slot_queue, LockMode::exclusive, deadline, path));
  if (queued == Outcome::timed_out) {
    return std::optional<int>();
  }
  auto slot = any_slot(file, slots, deadline, path);
  unlock_byte(file, protocol::k_slot_queue);
  if (!slot || !slot.value()) {
    return slot;
  }
  auto counted = take(file, protocol::k_slot_counts + slots, LockMode::shared, deadline, path);
  if (counted && counted.value() == Outcome::acquired) {
    auto locked = lock(file, LockMode::shared, deadline.timeout_left(), path);
    if (locked && locked.value() == Outcome::acquired) {
      return slot;
    }
    unlock_byte(file, protocol::k_slot_counts + slots);
    counted = locked;
  }
  unlock_byte(file, slot_byte(*slot.value()));
  if (!counted) {
    return counted.error();
  }
  return std::optional<int>();
}

Result<void> unlock_slot(NativeHandle file, int slot, int slots, const std::filesystem::path& path) {
  auto released = unlock(file, path);
  unlock_byte(file, protocol::k_slot_counts + slots);
  unlock_byte(file, slot_byte(slot));
  return released;
}

Result<void> unlock(NativeHandle file, const std::filesystem::path& path) {
  if (!UnlockFile(file, static_cast<DWORD>(k_data & 0xffffffff), static_cast<DWORD>(k_data >> 32), 1, 0)) {
    return Error(ErrorKind::system, "cannot unlock", utf8(path), static_cast<int>(GetLastError()));
  }
  return {};
}

} // namespace platform
} // namespace fasten
