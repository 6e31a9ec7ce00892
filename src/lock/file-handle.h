#pragma once

#include <utility>

namespace fasten {

/// The operating system's handle to an open file: a descriptor on POSIX, a
/// HANDLE on Windows (whose INVALID_HANDLE_VALUE is -1 too). Win32 has a
/// second invalid value: CreateFile fails with INVALID_HANDLE_VALUE, but
/// CreateEvent, CreateJobObject and CreateProcess's handles with NULL.
#ifdef _WIN32
using NativeHandle = void*;
inline const NativeHandle k_invalid_handle = reinterpret_cast<NativeHandle>(-1LL);
inline const NativeHandle k_null_handle = nullptr;
#else
using NativeHandle = int;
inline constexpr NativeHandle k_invalid_handle = -1;
inline constexpr NativeHandle k_null_handle = -1;
#endif

/// The handle a parent process passed down by number: a shell's descriptor
/// (`exec 9>>file`) on POSIX, a handle's value on Windows.
[[nodiscard]] NativeHandle handle_from_number(int number) noexcept;

/// Owns one descriptor or HANDLE (an open file, an event, a process, a job)
/// and closes it when destroyed: the one owner of every one of them.
/// Move-only, so exactly one owner closes it. Either invalid value of Win32
/// is no handle.
class FileHandle {
public:
  FileHandle() noexcept = default;
  explicit FileHandle(NativeHandle handle) noexcept : m_handle(handle) {}
  FileHandle(FileHandle&& other) noexcept : m_handle(other.release()) {}
  FileHandle& operator=(FileHandle&& other) noexcept {
    if (this != &other) {
      reset(other.release());
    }
    return *this;
  }
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  ~FileHandle() { reset(); }

  NativeHandle get() const noexcept { return m_handle; }
  bool valid() const noexcept { return m_handle != k_invalid_handle && m_handle != k_null_handle; }

  /// Gives up ownership without closing.
  NativeHandle release() noexcept { return std::exchange(m_handle, k_invalid_handle); }

  /// Closes the current handle (if any) and owns `handle` instead.
  void reset(NativeHandle handle = k_invalid_handle) noexcept;

private:
  NativeHandle m_handle = k_invalid_handle;
};

} // namespace fasten
