// fasten: run a command while holding an inter-process lock. The work is in
// the library (src/lock) and in running the command (src/run); this file only
// picks the program that takes LOCK. fasten takes lock files; an etcd:// LOCK
// goes to fasten-etcd (src/etcd), so that fasten itself has no network code.
// It starts threads only while it waits for a lock (the waiting line on a
// terminal, -v's reminder, a --slots wait), none while the command runs.

#include <cstring>

#include "cli/lock-command.h"
#include "cli/program.h"
#include "etcd/syntax.h"
#include "fasten-config.h"
#include "lock/backend.h"
#include "run/exit-codes.h"
#include "run/program.h"

namespace {

using namespace fasten;

/// Where fasten-etcd is: next to fasten in the build tree, and in
/// libexecdir/fasten where meson installs it, found from fasten's own place
/// so that an installed tree can be moved (DESTDIR, a relocated prefix).
std::filesystem::path etcd_program() {
  const auto self = run::running_program();
  const auto dir = self.empty() ? std::filesystem::path(FASTEN_BINDIR) : self.parent_path();
  const auto beside = dir / "fasten-etcd";
  if (std::filesystem::exists(beside)) {
    return beside;
  }
  return (dir / FASTEN_HELPER_DIR_FROM_BINDIR / "fasten-etcd").lexically_normal();
}

/// Replaces fasten with fasten-etcd, which reads the same command line.
[[noreturn]] void hand_to_etcd_program(const std::string& lock, char** argv) {
  const auto program = etcd_program();
  const int error = run::exec_program(program, argv);
  const std::string why = error == ENOENT ? "is not installed (a build without etcd has none)"
                                          : std::string("cannot be run: ") + std::strerror(error);
  throw cli::Failure(exit_code::k_unavailable,
                     lock + ": etcd locks need " + program.string() + ", which " + why);
}

} // namespace

int main(int argc, char** argv) {
  return cli::run_program(argc, argv, [argv](const cli::LockOptions& options) {
    for (const auto& lock : cli::named_locks(options)) {
      if (is_etcd_url(lock.path)) {
        hand_to_etcd_program(lock.path, argv);
      }
    }
    return cli::run_lock_command(options, file_backend());
  });
}
