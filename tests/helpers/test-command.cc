// A command for fasten.exe to run in tests/integration/windows.sh, where
// there is no POSIX shell: it holds until told, reports its arguments and
// environment, or exits with a given status.
//
//   test-command hold READY RELEASE   create READY, wait until RELEASE exists, then
//                                     create RELEASE.seen (not if it was killed first)
//   test-command args OUT ARG...      write each ARG on a line of its own to OUT
//   test-command env OUT NAME...      write each NAME=value to OUT
//   test-command exit N               exit with status N
//   test-command log LOG NAME         append "start NAME SLOT" to LOG (SLOT: FASTEN_SLOT, or -), wait
//                                     until NAME.release exists, then append "end NAME SLOT"

#include <windows.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace {

void wait_for_file(const std::string& path) {
  while (!std::filesystem::exists(path)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

/// Appends `line` under an exclusive lock of LOG.lock (closing the handle
/// drops it). Wine does not make FILE_APPEND_DATA writes atomic as Windows
/// does: without the lock, lines of processes logging at once get lost or mixed.
bool append_line(const std::string& path, const std::string& line) {
  const DWORD sharing = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
  HANDLE guard = CreateFileA((path + ".lock").c_str(), GENERIC_READ, sharing, nullptr, OPEN_ALWAYS,
                             FILE_ATTRIBUTE_NORMAL, nullptr);
  OVERLAPPED first_byte{};
  if (guard == INVALID_HANDLE_VALUE || !LockFileEx(guard, LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &first_byte)) {
    return false;
  }
  HANDLE file = CreateFileA(path.c_str(), FILE_APPEND_DATA, sharing, nullptr, OPEN_ALWAYS,
                            FILE_ATTRIBUTE_NORMAL, nullptr);
  const std::string text = line + "\n";
  DWORD written = 0;
  const bool ok = file != INVALID_HANDLE_VALUE &&
                  SetFilePointerEx(file, LARGE_INTEGER{}, nullptr, FILE_END) &&
                  WriteFile(file, text.data(), static_cast<DWORD>(text.size()), &written, nullptr) &&
                  written == text.size();
  if (file != INVALID_HANDLE_VALUE) {
    CloseHandle(file);
  }
  CloseHandle(guard);
  return ok;
}

} // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "hold" && argc == 4) {
    std::ofstream(argv[2]).put('\n');
    wait_for_file(argv[3]);
    std::ofstream(std::string(argv[3]) + ".seen").put('\n');
    return 0;
  }
  if (mode == "args" && argc >= 3) {
    std::ofstream out(argv[2], std::ios::binary);
    for (int i = 3; i < argc; ++i) {
      out << argv[i] << '\n';
    }
    return 0;
  }
  if (mode == "env" && argc >= 3) {
    std::ofstream out(argv[2], std::ios::binary);
    for (int i = 3; i < argc; ++i) {
      const char* value = std::getenv(argv[i]);
      out << argv[i] << '=' << (value != nullptr ? value : "(unset)") << '\n';
    }
    return 0;
  }
  if (mode == "log" && argc == 4) {
    const char* slot = std::getenv("FASTEN_SLOT");
    const std::string what = std::string(argv[3]) + " " + (slot != nullptr ? slot : "-");
    if (!append_line(argv[2], "start " + what)) {
      return 101;
    }
    wait_for_file(std::string(argv[3]) + ".release");
    return append_line(argv[2], "end " + what) ? 0 : 101;
  }
  if (mode == "exit" && argc == 3) {
    return std::atoi(argv[2]);
  }
  return 100;
}
