// fasten-etcd: fasten for etcd:// LOCKs. fasten execs it with its own command
// line (see src/programs/fasten.cc); it takes lock files too, so that it is fasten
// with one more backend, not a program of its own to learn.

#include <malloc.h>

#include "cli/diagnostics.h"
#include "cli/escape.h"
#include "cli/failure.h"
#include "cli/lock-command.h"
#include "cli/program.h"
#include "etcd/lock.h"
#include "etcd/url.h"
#include "run/exit-codes.h"

namespace {

using namespace fasten;

/// What an etcd lock gets from the command line besides what a lock file
/// gets: the TTL, the command stored with its key, FASTEN_ETCD_ENDPOINTS,
/// -v's lines when a waiter queues again or waits out a vanished holder,
/// and FASTEN_ETCD_RECHECK.
EtcdOptions etcd_options(const cli::LockOptions& options) {
  std::string command;
  for (const auto& word : options.command) {
    command += (command.empty() ? "" : " ") + word;
  }
  return EtcdOptions{
      .ttl = options.ttl,
      .holder_command = std::move(command),
      .default_endpoints = options.etcd_endpoints,
      .on_requeue =
          [&options](const std::string& reason) {
            cli::verbose("lost its place in the queue for {} ({}): {}; queueing again with a new lease",
                         cli::escape_text(options.lock_path), options.mode_name, cli::escape_text(reason));
          },
      .on_vanished =
          [&options](const std::string& key, std::chrono::seconds ttl, bool waits) {
            cli::verbose("a holder of {} ({}) vanished without letting go (its key {} is gone): {} {} s, in "
                         "case its command still runs",
                         cli::escape_text(options.lock_path), options.mode_name, cli::escape_text(key),
                         waits ? "waiting its TTL of" : "its mark goes by itself after its TTL of", ttl.count());
          },
      // Above 0, so at least a millisecond.
      .recheck = std::chrono::ceil<std::chrono::milliseconds>(options.etcd_recheck),
  };
}

} // namespace

int main(int argc, char** argv) {
#ifdef M_ARENA_MAX
  // One malloc arena for every thread: the lease keeper's thread allocates
  // little, and an arena of its own would cost a 64 MB reservation and the
  // page faults of setting it up, on every hold.
  mallopt(M_ARENA_MAX, 1);
#endif
  return cli::run_program(argc, argv, [](const cli::LockOptions& options) {
    for (const auto& lock : cli::named_locks(options)) {
      if (is_etcd_url(lock.path)) {
        // Read here, not where fasten reads its options, so that fasten needs
        // no etcd code; a bad URL is a usage error all the same.
        const auto url = parse_etcd_url(lock.path, options.etcd_endpoints);
        if (!url) {
          throw cli::Failure(exit_code::k_usage, cli::error_line(url.error()));
        }
      }
    }
    return cli::run_lock_command(options, etcd_backend(etcd_options(options)));
  });
}
