#include "etcd/revoke-on-signal.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <array>
#include <mutex>
#include <utility>

namespace fasten::etcd {

namespace {

/// The signals that end fasten while it waits (run::end_on_termination_signals).
constexpr std::array k_ending_signals{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

/// Those of k_ending_signals at their default action now: one that is
/// ignored (nohup's HUP) stays ignored, one with a handler is the handler's.
sigset_t signals_at_default() {
  sigset_t found;
  sigemptyset(&found);
  for (const int signal : k_ending_signals) {
    struct sigaction current {};
    if (sigaction(signal, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      sigaddset(&found, signal);
    }
  }
  return found;
}

/// The leases of the etcd locks this process holds, with their endpoints,
/// their keys and the keys' marks.
struct HeldLease {
  std::vector<std::string> endpoints;
  std::int64_t lease = 0;
  std::string key;
  std::string mark;
};
struct HeldLeases {
  std::mutex mutex;
  std::vector<HeldLease> leases;
};

/// Deletes the key and its mark in one transaction, then revokes the
/// lease, within k_revoke_timeout: a key never stays without its mark.
void leave(Client& client, std::int64_t lease, const std::string& key, const std::string& mark) {
  const Deadline deadline(RevokeOnSignal::k_revoke_timeout);
  (void)client.put_if({}, {}, {key, mark}, deadline);
  (void)client.revoke(lease, deadline);
}

HeldLeases& held_leases() {
  static HeldLeases held;
  return held;
}

} // namespace

void note_held_lease(const std::vector<std::string>& endpoints, std::int64_t lease, std::string key,
                     std::string mark) {
  auto& held = held_leases();
  std::lock_guard guard(held.mutex);
  held.leases.push_back({.endpoints = endpoints, .lease = lease, .key = std::move(key), .mark = std::move(mark)});
}

void let_go_of_lease(std::int64_t lease) {
  auto& held = held_leases();
  std::lock_guard guard(held.mutex);
  std::erase_if(held.leases, [lease](const HeldLease& entry) { return entry.lease == lease; });
}

RevokeOnSignal::RevokeOnSignal(const std::vector<std::string>& endpoints, std::size_t first_endpoint,
                               std::int64_t lease, std::string key, std::string mark)
    : m_client(endpoints), m_lease(lease), m_key(std::move(key)), m_mark(std::move(mark)), m_signals(signals_at_default()) {
  m_client.start_with(first_endpoint);
  // Blocked before the descriptor exists, so that none is lost in between:
  // a blocked signal waits, and the signalfd reads it.
  pthread_sigmask(SIG_BLOCK, &m_signals, &m_old_mask);
  m_signal_fd.reset(signalfd(-1, &m_signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!m_signal_fd.valid()) {
    // No descriptors left: the signals end fasten at once, as without this.
    pthread_sigmask(SIG_SETMASK, &m_old_mask, nullptr);
    return;
  }
  m_interrupt = {.descriptor = m_signal_fd.get(), .act = [this] { act(); }};
}

RevokeOnSignal::~RevokeOnSignal() {
  if (!m_signal_fd.valid()) {
    return;
  }
  // One that came after the last wait: acted on as any other.
  act();
  pthread_sigmask(SIG_SETMASK, &m_old_mask, nullptr);
}

void RevokeOnSignal::act() {
  if (const int signal = take_signal(); signal != 0) {
    revoke_and_die(signal);
  }
}

int RevokeOnSignal::take_signal() {
  signalfd_siginfo info{};
  if (read(m_signal_fd.get(), &info, sizeof info) != static_cast<ssize_t>(sizeof info)) {
    return 0;
  }
  return static_cast<int>(info.ssi_signo);
}

void RevokeOnSignal::revoke_and_die(int signal) {
  // Whatever etcd says, the signal ends fasten: the lease runs out by itself
  // if this did not reach etcd.
  leave(m_client, m_lease, m_key, m_mark);
  {
    auto& held = held_leases();
    std::lock_guard guard(held.mutex);
    for (const auto& entry : held.leases) {
      Client client(entry.endpoints);
      leave(client, entry.lease, entry.key, entry.mark);
    }
  }
  // Unblocked in this thread only, and still at its default: the whole
  // process ends by it, with the status a shell reads as 128 + N.
  sigset_t just;
  sigemptyset(&just);
  sigaddset(&just, signal);
  pthread_sigmask(SIG_UNBLOCK, &just, nullptr);
  raise(signal);
  _exit(128 + signal); // not reached: the action is the default, which ends the process
}

} // namespace fasten::etcd
