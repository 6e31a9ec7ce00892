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
// The lock protocol over these byte locks is protocol.cc's (ARCHITECTURE.md,
// "Protocols"). Windows cannot see a lock without taking it, so probe() says
// Seen::unknown and the protocol passes everyone through the turnstile.
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
  if (valid()) {
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

/// Waits for one byte in the kernel until the deadline (a try every few
/// milliseconds under Wine).
Result<Outcome> wait_byte(HANDLE file, std::int64_t offset, LockMode mode, const Deadline& deadline,
                          const std::filesystem::path& path) {
  const DWORD exclusive = mode == LockMode::exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0;
  if (!overlapped_lock_waits_work()) {
    return retry_until(file, offset, exclusive, deadline, path);
  }

  FileHandle event(CreateEventW(nullptr, TRUE, FALSE, nullptr));
  if (!event.valid()) {
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

// Waiting for any one of N bytes (a slot of a counting semaphore): an
// overlapped LockFileEx on each, for the first that is granted; the others
// are cancelled, and any granted in the meantime is given back.
// WaitForMultipleObjects takes at most MAXIMUM_WAIT_OBJECTS events: with more
// bytes than that, and under Wine, whose overlapped lock waits never
// complete, the waiter tries every byte again every few milliseconds.

/// Takes the first free byte of `count` from `first` on, without waiting.
Result<std::optional<int>> try_any(HANDLE file, std::int64_t first, int count,
                                   const std::filesystem::path& path) {
  for (int i = 0; i < count; ++i) {
    const Outcome outcome = FASTEN_TRY(try_once(file, first + i, LOCKFILE_EXCLUSIVE_LOCK, path));
    if (outcome == Outcome::acquired) {
      return std::optional<int>(i);
    }
  }
  return std::optional<int>();
}

Result<std::optional<int>> retry_any(HANDLE file, std::int64_t first, int count, const Deadline& deadline,
                                     const std::filesystem::path& path) {
  DWORD pause = 1;
  while (true) {
    const auto slot = FASTEN_TRY(try_any(file, first, count, path));
    const DWORD left = milliseconds_left(deadline);
    if (slot || left == 0) {
      return slot;
    }
    Sleep(std::min(pause, left));
    pause = std::min<DWORD>(pause * 2, 10);
  }
}

/// An overlapped exclusive LockFileEx on each of `count` bytes from `first`
/// on, each with its own event.
class AnyByteRequests {
public:
  AnyByteRequests(HANDLE file, std::int64_t first, int count)
      : m_file(file), m_first(first), m_requests(static_cast<std::size_t>(count)) {}
  AnyByteRequests(const AnyByteRequests&) = delete;
  AnyByteRequests& operator=(const AnyByteRequests&) = delete;
  ~AnyByteRequests() { settle(); }

  /// Queues a request on every slot; the error of the first that fails.
  Result<void> start(const std::filesystem::path& path) {
    for (std::size_t i = 0; i < m_requests.size(); ++i) {
      Request& request = m_requests[i];
      request.event = FileHandle(CreateEventW(nullptr, TRUE, FALSE, nullptr));
      if (!request.event.valid()) {
        return Error(ErrorKind::system, "cannot create an event to wait for a slot", utf8(path),
                     static_cast<int>(GetLastError()));
      }
      request.overlapped = at(m_first + static_cast<std::int64_t>(i), request.event.get());
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
        unlock_byte(m_file, m_first + static_cast<std::int64_t>(i));
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
  std::int64_t m_first;
  std::vector<Request> m_requests;
};

/// Any one of `count` bytes from `first` on, waiting up to the deadline.
Result<std::optional<int>> wait_any_byte(HANDLE file, std::int64_t first, int count, const Deadline& deadline,
                                         const std::filesystem::path& path) {
  if (!overlapped_lock_waits_work() || count > MAXIMUM_WAIT_OBJECTS) {
    return retry_any(file, first, count, deadline, path);
  }
  AnyByteRequests requests(file, first, count);
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

/// LockFileEx's byte locks.
class LockFileExByteLocks final : public ByteLocks {
public:
  Result<Outcome> try_lock(NativeHandle file, std::int64_t byte, LockMode mode,
                           const std::filesystem::path& path) override {
    return try_once(file, byte, mode == LockMode::exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0, path);
  }

  Result<Outcome> wait_lock(NativeHandle file, std::int64_t byte, LockMode mode, const Deadline& deadline,
                            const std::filesystem::path& path) override {
    return wait_byte(file, byte, mode, deadline, path);
  }

  Result<std::optional<int>> wait_any(NativeHandle file, std::int64_t first, int count,
                                      const Deadline& deadline, const std::filesystem::path& path) override {
    return wait_any_byte(file, first, count, deadline, path);
  }

  Result<Seen> probe(NativeHandle, std::int64_t, const std::filesystem::path&) override {
    // LockFileEx cannot look at a lock without taking it.
    return Seen::unknown;
  }

  Result<void> unlock(NativeHandle file, std::int64_t byte, const std::filesystem::path& path) override {
    if (!UnlockFile(file, static_cast<DWORD>(byte & 0xffffffff), static_cast<DWORD>(byte >> 32), 1, 0)) {
      return Error(ErrorKind::system, "cannot unlock", utf8(path), static_cast<int>(GetLastError()));
    }
    return {};
  }

  Result<void> unlock_protocol(NativeHandle file, const std::filesystem::path& path) override {
    return unlock(file, protocol::k_data, path);
  }
};

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

ByteLocks& byte_locks() {
  static LockFileExByteLocks locks;
  return locks;
}

} // namespace platform
} // namespace fasten
