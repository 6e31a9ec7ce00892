// fasten-etcd: fasten for etcd:// LOCKs. fasten execs it with its own command
// line (see src/programs/fasten.cc); it takes lock files too, so that it is fasten
// with one more backend, not a program of its own to learn.

#include "cli/failure.h"
#include "cli/lock-command.h"
#include "cli/program.h"
#include "etcd/lock.h"
#include "etcd/url.h"
#include "run/exit-codes.h"

int main(int argc, char** argv) {
  using namespace fasten;
  return cli::run_program(argc, argv, [](const cli::LockOptions& options) {
    for (const auto& lock : cli::named_locks(options)) {
      if (is_etcd_url(lock.path)) {
        // Read here, not where fasten reads its options, so that fasten needs
        // no etcd code; a bad URL is a usage error all the same.
        const auto url = parse_etcd_url(lock.path, options.etcd_endpoints);
        if (!url) {
          throw cli::Failure(exit_code::k_usage, url.error());
        }
      }
    }
    return cli::run_lock_command(options, etcd_backend());
  });
}
