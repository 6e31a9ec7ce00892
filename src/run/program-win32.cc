#include <windows.h>
// After windows.h, which it needs.
#include <shellapi.h>

#include <cerrno>
#include <string>

#include "lock/text-win32.h"
#include "run/program.h"

namespace fasten::run {

std::vector<std::string> utf8_arguments(int argc, char** argv) {
  int count = 0;
  wchar_t** wide = CommandLineToArgvW(GetCommandLineW(), &count);
  if (wide == nullptr) {
    return std::vector<std::string>(argv, argv + argc);
  }
  std::vector<std::string> arguments;
  for (int i = 0; i < count; ++i) {
    arguments.push_back(to_utf8(wide[i]));
  }
  LocalFree(wide);
  return arguments;
}

std::filesystem::path running_program() {
  std::wstring file(MAX_PATH, L'\0');
  const DWORD length = GetModuleFileNameW(nullptr, file.data(), static_cast<DWORD>(file.size()));
  if (length == 0 || length >= file.size()) {
    return {};
  }
  file.resize(length);
  return file;
}

// Windows has no exec: a program that runs another in its place would have a
// pid of its own, and the lock's holder would not be the process its caller
// started. No program to hand a LOCK to is built there (etcd locks are built
// for Linux), so the answer is that it is not there.
int exec_program(const std::filesystem::path&, char**) {
  return ENOENT;
}

FilledDescriptors fill_standard_descriptors() noexcept {
  return {};
}

std::vector<int> ancestor_pids() {
  // Windows keeps a parent's pid, but not whether it is still the parent.
  return {};
}

std::optional<int> parent_of(int) {
  return std::nullopt;
}

} // namespace fasten::run
