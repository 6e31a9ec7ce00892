// A command for fasten.exe to run in tests/integration/windows.sh, where
// there is no POSIX shell: it holds until told, reports its arguments and
// environment, or exits with a given status.
//
//   test-command hold READY RELEASE   create READY, wait until RELEASE exists, then
//                                     create RELEASE.seen (not if it was killed first)
//   test-command args OUT ARG...      write each ARG on a line of its own to OUT
//   test-command env OUT NAME...      write each NAME=value to OUT
//   test-command exit N               exit with status N

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "hold" && argc == 4) {
    std::ofstream(argv[2]).put('\n');
    while (!std::filesystem::exists(argv[3])) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
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
  if (mode == "exit" && argc == 3) {
    return std::atoi(argv[2]);
  }
  return 100;
}
