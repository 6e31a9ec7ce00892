#pragma once

#include <signal.h>

#include <cstdint>
#include <string>
#include <vector>

#include "etcd/client.h"
#include "lock/file-handle.h"

namespace fasten::etcd {

/// Notes the lease of an etcd lock this process holds, until let_go_of_lease:
/// a fasten that holds several locks and waits for another revokes these
/// too when a signal ends it (RevokeOnSignal), so that the locks it took
/// are let go at once rather than when their leases run out.
/// `key` and `mark` are its key and the key's mark (queue.h), deleted
/// together first.
void note_held_lease(const std::vector<std::string>& endpoints, std::int64_t lease, std::string key,
                     std::string mark);
void let_go_of_lease(std::int64_t lease);

/// While a waiter queues for an etcd lock, a signal that ends it (HUP, INT,
/// QUIT, TERM, USR1 or USR2, each where it is at its default action) first
/// deletes its key and the key's mark (queue.h) in one transaction and
/// revokes its lease (and does the same for the etcd locks
/// this process holds: note_held_lease), and then ends the process by
/// that signal as before: the shell still sees 128 + N, and the waiter
/// behind it moves up at once instead of once the lease has run out. The
/// revoke gets at most k_revoke_timeout, so a silent etcd delays the end by
/// no more than that.
///
/// It blocks those signals in the thread that makes it and reads them from
/// a signalfd that the waiter's own requests watch while they wait
/// (interrupt(), for Client::set_interrupt), and its pauses between them:
/// no thread of its own, which cost every hold a thread's start and end.
/// A signal that comes while the waiter is between waits is acted on at
/// the next one, or here when the waiter leaves the queue. Made and
/// destroyed by the same thread; other threads must have those signals
/// blocked too (the lease keeper blocks every signal).
class RevokeOnSignal {
public:
  static constexpr Milliseconds k_revoke_timeout{1000};

  /// `first_endpoint` is the one to ask first: the one that granted. `key`
  /// and `mark`: the waiter's key and its mark.
  RevokeOnSignal(const std::vector<std::string>& endpoints, std::size_t first_endpoint, std::int64_t lease,
                 std::string key, std::string mark);
  /// A signal that came meanwhile but was not read yet is acted on here.
  ~RevokeOnSignal();
  RevokeOnSignal(const RevokeOnSignal&) = delete;
  RevokeOnSignal& operator=(const RevokeOnSignal&) = delete;

  /// What the waiter's requests watch: the signalfd, and acting on a
  /// signal read from it (a descriptor of -1 when there is none: the
  /// signals then end fasten at once, as without this).
  const http::Interrupt& interrupt() const noexcept { return m_interrupt; }

private:
  /// Revokes and ends the process if a signal is there to read.
  void act();
  /// Reads one signal if one is there; 0 if none is.
  int take_signal();
  [[noreturn]] void revoke_and_die(int signal);

  Client m_client;
  std::int64_t m_lease;
  std::string m_key;
  std::string m_mark;
  sigset_t m_signals;
  sigset_t m_old_mask;
  FileHandle m_signal_fd;
  http::Interrupt m_interrupt;
};

} // namespace fasten::etcd
