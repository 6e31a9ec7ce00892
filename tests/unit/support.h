#pragma once

// What the unit tests share on every platform: a temporary directory that
// cleans up after itself, and opening a lock. (holder-posix.h has a child
// process that holds a lock.)

#include <chrono>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>

#include "lock/lock.h"

namespace fasten::test {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// A fresh directory, removed with everything in it when the test ends.
class TempDir {
public:
  TempDir() {
    std::random_device random;
    do {
      m_path = std::filesystem::temp_directory_path() / ("fasten-test-" + std::to_string(random()));
    } while (!std::filesystem::create_directory(m_path));
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::filesystem::path operator/(const std::string& name) const { return m_path / name; }
  const std::filesystem::path& path() const { return m_path; }

private:
  std::filesystem::path m_path;
};

/// Opens `path` for `mode` and fails the test if that does not work.
inline LockFile open_lock(const std::filesystem::path& path, LockMode mode = LockMode::exclusive) {
  auto lock = LockFile::open(path, OpenOptions{.access = mode, .create = true, .create_mode = std::nullopt});
  if (!lock) {
    throw std::runtime_error(lock.error().message());
  }
  return std::move(lock).value();
}

} // namespace fasten::test
