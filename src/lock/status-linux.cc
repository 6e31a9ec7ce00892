// `status` on Linux: who holds a lock file, from the kernel's own tables.
//
// /proc/locks lists every fcntl lock: its kind (POSIX for classic locks,
// OFDLCK for open-file-description locks), READ or WRITE, the owner's pid,
// the file as major:minor:inode, and the byte range; a request that waits is
// listed with "->" after the lock that blocks it. A classic lock names its
// process; an OFD lock shows pid -1, because it belongs to an open file that
// any number of processes may share. Those are found through
// /proc/PID/fdinfo/FD, which lists the locks held through that descriptor.
// Other users' /proc/PID/fdinfo cannot be read without privileges: such a
// holder is reported with no pid. Only procfs is read, never another
// process's files, so no other process's mount can make status wait.

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdlib>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <vector>

#include "lock/file-handle.h"
#include "lock/file-id.h"
#include "lock/fullest-reading.h"
#include "lock/proc-linux.h"
#include "lock/lockable-linux.h"
#include "lock/protocol.h"
#include "lock/status.h"

namespace fasten {

namespace {

/// One line of /proc/locks, or of a "lock:" line in /proc/PID/fdinfo/FD.
struct LockEntry {
  bool waiting = false;
  bool open_file_lock = false;
  /// A flock(2) lock: not one of fasten's, but worth naming beside them.
  bool flock = false;
  bool write = false;
  long pid = -1;
  FileId file{};
  std::int64_t start = 0;
  std::optional<std::int64_t> end; // std::nullopt: to the end of the file and beyond
};

/// "1: POSIX  ADVISORY  WRITE 4211 08:02:131 0 EOF", "2: -> OFDLCK ..."
std::optional<LockEntry> parse_lock_line(const std::string& line) {
  std::istringstream words(line);
  std::string id, kind, advisory, access, device, start, end;
  LockEntry entry;
  words >> id >> kind;
  if (kind == "->") {
    entry.waiting = true;
    words >> kind;
  }
  words >> advisory >> access >> entry.pid >> device >> start >> end;
  if (!words || (kind != "POSIX" && kind != "OFDLCK" && kind != "FLOCK")) {
    return std::nullopt; // leases and the like
  }
  entry.open_file_lock = kind == "OFDLCK";
  entry.flock = kind == "FLOCK";
  entry.write = access == "WRITE";
  unsigned major_number = 0;
  unsigned minor_number = 0;
  std::uint64_t inode = 0;
  if (std::sscanf(device.c_str(), "%x:%x:%" SCNu64, &major_number, &minor_number, &inode) != 3) {
    return std::nullopt;
  }
  // The kernel writes the device as major:minor; stat(2) gives it whole.
  entry.file = FileId{makedev(major_number, minor_number), inode};
  // Numbers, as the kernel writes them; anything else is no lock of ours
  // (std::stoll would throw on it).
  const auto number = [](const std::string& text) -> std::optional<std::int64_t> {
    std::int64_t value = 0;
    const auto [rest, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    return error == std::errc() && rest == text.data() + text.size() ? std::optional(value) : std::nullopt;
  };
  const auto first = number(start);
  const auto last = end == "EOF" ? std::optional<std::int64_t>() : number(end);
  if (!first || (end != "EOF" && !last)) {
    return std::nullopt;
  }
  entry.start = *first;
  entry.end = last;
  return entry;
}

bool covers_data(const LockEntry& entry) {
  return entry.start <= protocol::k_data && (!entry.end || *entry.end >= protocol::k_data);
}

/// For a lock on one byte of a block of `count` bytes from `first`: which.
/// (A whole-file lock covers the block too, but is no slot.)
std::optional<int> byte_in(const LockEntry& entry, std::int64_t first, int count) {
  if (!entry.end || *entry.end != entry.start || entry.start < first || entry.start >= first + count) {
    return std::nullopt;
  }
  return static_cast<int>(entry.start - first);
}

/// The slot that a lock on a slot byte holds.
std::optional<int> slot_of(const LockEntry& entry) {
  return byte_in(entry, protocol::k_slots, protocol::k_max_slots);
}

/// The number of slots that a lock on a slot-count byte says.
std::optional<int> slot_count_of(const LockEntry& entry) {
  return byte_in(entry, protocol::k_slot_counts, protocol::k_max_slots + 1);
}

/// Whether a failed read of a file of process `pid` in /proc says that it
/// has ended, rather than that it is hidden (procfs mounted with hidepid).
bool has_ended(long pid, const Error& error) {
  return error.sys_errno() == ESRCH || (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH);
}

/// The command line of process `pid`, its words joined by spaces; empty
/// where it cannot be read, std::nullopt where the process has ended.
std::optional<std::string> command_line(long pid) {
  auto read = read_proc_file("/proc/" + std::to_string(pid) + "/cmdline");
  if (!read && has_ended(pid, read.error())) {
    return std::nullopt;
  }
  std::string text = read ? std::move(read.value()) : std::string();
  while (!text.empty() && text.back() == '\0') {
    text.pop_back();
  }
  std::replace(text.begin(), text.end(), '\0', ' ');
  return text;
}

/// Whether two descriptors, of these processes, share one open file
/// description. kcmp needs the right to ptrace both; without it they count as
/// different.
bool same_open_file(long pid1, int fd1, long pid2, int fd2) {
  return ::syscall(SYS_kcmp, static_cast<pid_t>(pid1), static_cast<pid_t>(pid2), KCMP_FILE, fd1, fd2) == 0;
}

struct OpenFileHolders {
  std::set<long> pids;
  /// The slot each of them holds, for those that hold one.
  std::map<long, int> slots;
  /// How many distinct open files (holds) those pids share among them.
  int holds = 0;
  /// The slots held through them: a slot byte with the data byte, on one
  /// open file.
  std::set<int> held_slots;
  /// The slot bytes of every open file seen, held with the data byte or not.
  std::set<int> seen_slots;
};

struct CloseDirectory {
  void operator()(DIR* directory) const noexcept { closedir(directory); }
};
using Directory = std::unique_ptr<DIR, CloseDirectory>;

Directory open_directory(const std::string& path) {
  return Directory(opendir(path.c_str()));
}

/// The processes that hold a lock covering the data byte of `file` through
/// one of their descriptors, as /proc/PID/fdinfo shows.
OpenFileHolders open_file_holders(const FileId& file) {
  OpenFileHolders found;
  std::vector<std::pair<long, int>> one_per_hold; // a descriptor of each distinct open file
  const Directory proc = open_directory("/proc");
  if (proc == nullptr) {
    return found;
  }
  while (const dirent* process = readdir(proc.get())) {
    const std::string pid = process->d_name;
    if (pid.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const std::string fdinfo_dir = "/proc/" + pid + "/fdinfo/";
    const Directory fds = open_directory(fdinfo_dir);
    if (fds == nullptr) {
      continue; // gone, or another user's
    }
    while (const dirent* fd = readdir(fds.get())) {
      if (fd->d_name[0] == '.') {
        continue;
      }
      const DescriptorHold held = held_through(fdinfo_dir + fd->d_name, file);
      if (held.slot) {
        found.seen_slots.insert(*held.slot);
      }
      if (!held.data) {
        continue;
      }
      const long holder = std::stol(pid);
      if (held.slot) {
        found.slots[holder] = *held.slot;
        found.held_slots.insert(*held.slot);
      }
      const int descriptor = std::atoi(fd->d_name);
      found.pids.insert(holder);
      if (std::none_of(one_per_hold.begin(), one_per_hold.end(), [&](const auto& known) {
            return same_open_file(known.first, known.second, holder, descriptor);
          })) {
        one_per_hold.emplace_back(holder, descriptor);
      }
    }
  }
  found.holds = static_cast<int>(one_per_hold.size());
  return found;
}

/// What /proc/PID/stat says of a process: its name (comm) and its parent.
struct ProcessFacts {
  std::string name;
  std::optional<int> parent;
};

/// std::nullopt where the process has ended or cannot be read.
std::optional<ProcessFacts> process_facts(long pid) {
  const auto stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
  const std::string& text = stat ? stat.value() : std::string();
  const auto open = text.find('(');
  const auto close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open || text.size() <= close + 4) {
    return std::nullopt;
  }
  return ProcessFacts{text.substr(open + 1, close - open - 1), std::atoi(text.c_str() + close + 4)};
}

/// Leaves out of `pids` the keepers (protocol::k_keeper_name) whose parent,
/// the fasten that holds the lock, is listed: the copy of the lock a keeper
/// holds is its parent's hold.
void leave_out_keepers(std::set<long>& pids) {
  for (auto pid = pids.begin(); pid != pids.end();) {
    const auto facts = process_facts(*pid);
    const bool keeper =
        facts && facts->name == protocol::k_keeper_name && facts->parent && pids.count(*facts->parent) != 0;
    pid = keeper ? pids.erase(pid) : std::next(pid);
  }
}

/// One reading of /proc/locks: the entries on `file`, and how many lines
/// it had in all.
struct Reading {
  std::vector<LockEntry> entries;
  std::size_t lines = 0;
};

Result<Reading> reading_on(const FileId& file, const std::filesystem::path& path) {
  const auto locks = read_proc_file("/proc/locks");
  if (!locks) {
    struct stat proc {};
    if (stat("/proc/self", &proc) != 0) {
      return Error(ErrorKind::system, "cannot read /proc/locks", "/proc is not mounted",
                   std::string("who holds a lock is read from procfs; mount it (mount -t proc proc /proc)"));
    }
    return Error(ErrorKind::system, "cannot read /proc/locks", path.string(), locks.error().sys_errno());
  }
  Reading reading;
  std::istringstream lines(locks.value());
  for (std::string line; std::getline(lines, line);) {
    ++reading.lines;
    auto entry = parse_lock_line(line);
    if (entry && entry->file == file) {
      reading.entries.push_back(std::move(*entry));
    }
  }
  return reading;
}

/// Of several readings of /proc/locks, the fullest (its entries on `file`). The kernel hands /proc/locks out
/// a page per read, and finds its place again by count for the next one: a lock that goes away meanwhile in
/// an earlier page makes the next page skip a line (and one that comes repeats one), so on a machine where
/// many locks come and go one reading can miss a holder, and say "free" of a lock that was held all along. A
/// page shift only ever drops or repeats lines, so of several readings the one that found the most lines on
/// the file is taken (fullest_reading): a lock held throughout is in it, and the worst left is a hold counted
/// twice. On a quiet machine the readings are the same.
Result<Reading> fullest_reading_on(const FileId& file, const std::filesystem::path& path) {
  return fullest_reading([&] { return reading_on(file, path); });
}

/// Whether any of `entries` holds the lock (a holder of the data byte, by
/// fcntl; not a waiter, not flock(2)).
bool holds_data(const std::vector<LockEntry>& entries) {
  return std::any_of(entries.begin(), entries.end(), [](const LockEntry& entry) {
    return !entry.flock && !entry.waiting && covers_data(entry);
  });
}

/// How the kernel says the data byte of `path` is held, asked directly with
/// a request that waits for nothing (F_OFD_GETLK on an open file of this
/// process's own, F_GETLK with classic locks): free, shared or exclusive.
/// std::nullopt where `path` is not the regular file `file` that this
/// process can open for reading. It does not say who holds it.
std::optional<LockState> data_byte_state(const std::filesystem::path& path, const FileId& file) {
  // O_NONBLOCK: a FIFO swapped in since the stat does not stall the open.
  const FileHandle opened(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  struct stat info {};
  if (opened.get() < 0 || fstat(opened.get(), &info) != 0 || !S_ISREG(info.st_mode) ||
      FileId{info.st_dev, info.st_ino} != file) {
    return std::nullopt;
  }
#if FASTEN_LOCK_API_OFD
  constexpr int k_get_lock = F_OFD_GETLK;
#else
  constexpr int k_get_lock = F_GETLK;
#endif
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  probe.l_start = protocol::k_data;
  probe.l_len = 1;
  if (fcntl(opened.get(), k_get_lock, &probe) != 0) {
    return std::nullopt;
  }
  return probe.l_type == F_UNLCK   ? LockState::free
         : probe.l_type == F_RDLCK ? LockState::shared
                                   : LockState::exclusive;
}

/// The entries on `file`, and, where none of them holds the lock, what the
/// kernel says of it. Under heavy churn every reading of /proc/locks can miss
/// a holder's lines (fullest_reading_on): if the kernel says the lock is held, it
/// reads again, up to k_missed_readings times, until one has them. Should
/// none, the kernel's word stands, for a holder that cannot be seen.
struct CheckedReading {
  std::vector<LockEntry> entries;
  std::optional<LockState> kernel_state{};
};

Result<CheckedReading> checked_reading_on(const FileId& file, const std::filesystem::path& path) {
  constexpr int k_missed_readings = 64;
  CheckedReading found{FASTEN_TRY(fullest_reading_on(file, path)).entries};
  if (holds_data(found.entries)) {
    return found;
  }
  found.kernel_state = data_byte_state(path, file);
  for (int reading = 0; reading < k_missed_readings && found.kernel_state &&
                        *found.kernel_state != LockState::free && !holds_data(found.entries);
       ++reading) {
    found.entries = FASTEN_TRY(reading_on(file, path)).entries;
  }
  return found;
}

/// The processes `pids` with their command lines, their parents and, for
/// those in `slots`, their slots. A process that has ended since is left
/// out: it holds nothing.
std::vector<LockHolder> named(const std::set<long>& pids, const std::map<long, int>& slots) {
  std::vector<LockHolder> holders;
  for (long pid : pids) {
    auto command = command_line(pid);
    if (!command) {
      continue;
    }
    const auto slot = slots.find(pid);
    const auto facts = process_facts(pid);
    holders.push_back(
        LockHolder{.pid = static_cast<int>(pid),
                   .command = std::move(*command),
                   .slot = slot == slots.end() ? std::nullopt : std::optional<int>(slot->second),
                   .parent = facts ? facts->parent : std::nullopt});
  }
  return holders;
}

/// What the entries on a file say, before their holders are named.
struct Tally {
  /// The state, the holds, the waiters and the slots (N) of the lock, and
  /// the held slots of classic locks (of open-file locks: from fdinfo).
  LockStatus status;
  /// The holders of classic locks on the data byte (open-file locks show no
  /// pid), and the slots that classic locks take (held or not).
  std::set<long> pids;
  std::map<long, int> slots;
  std::set<long> flock_pids;
  int open_file_holds = 0;
  /// The slot bytes held by open-file locks: their holders hold the slot,
  /// or wait for the data byte with it in hand. (A set: a reading of
  /// /proc/locks may repeat a line.)
  std::set<int> open_file_slots;
  bool slot_waiter = false;
};

/// The head of the slot queue, once whether it is seen by the queue byte it
/// holds or by the slot byte it waits for: between two of its waits on a
/// slot byte (it tries the others) only the queue byte shows it.
void count_slot_waiter(Tally& tally) {
  tally.status.waiting += tally.slot_waiter ? 0 : 1;
  tally.slot_waiter = true;
}

void count_waiter(Tally& tally, const LockEntry& entry) {
  // The first slot waiter waits on every slot at once: one waiter.
  if (slot_of(entry)) {
    count_slot_waiter(tally);
  } else {
    ++tally.status.waiting;
  }
}

bool is_slot_queue(const LockEntry& entry) {
  return entry.start == protocol::k_slot_queue && entry.end && *entry.end == entry.start;
}

void count_data_holder(Tally& tally, const LockEntry& entry) {
  LockStatus& status = tally.status;
  // The byte has one writer at most: a second writer's line is the same
  // line again, or one from before the lock changed hands while it was read.
  // A classic lock's line names its one process, which holds the byte once:
  // the same line again is a line that a reading repeated.
  if ((entry.write && status.state == LockState::exclusive) ||
      (!entry.open_file_lock && !tally.pids.insert(entry.pid).second)) {
    return;
  }
  ++status.holds;
  if (entry.write) {
    status.state = LockState::exclusive;
  } else if (status.state == LockState::free) {
    status.state = LockState::shared;
  }
  if (entry.open_file_lock) {
    ++tally.open_file_holds;
  }
}

void count(Tally& tally, const LockEntry& entry) {
  if (entry.flock) {
    if (!entry.waiting) {
      tally.flock_pids.insert(entry.pid);
    }
  } else if (entry.waiting) {
    // A holder that waits for the nested holds in it to end is no waiter.
    if (entry.start != protocol::k_nested) {
      count_waiter(tally, entry);
    }
  } else if (is_slot_queue(entry)) {
    count_slot_waiter(tally);
  } else if (const auto slot = slot_of(entry)) {
    if (entry.open_file_lock) {
      tally.open_file_slots.insert(*slot);
    } else {
      tally.slots[entry.pid] = *slot;
    }
  } else if (const auto slots = slot_count_of(entry)) {
    tally.status.slots = std::max(tally.status.slots, *slots);
  } else if (covers_data(entry)) {
    count_data_holder(tally, entry);
  } // else the turnstile alone: a writer or readers on their way in
}

/// A slot holder takes its slot byte first, then waits for the data byte as
/// a reader does: it holds its slot only once it has both. A classic lock
/// names its process, which either holds the data byte or waits.
Tally tally_of(const std::vector<LockEntry>& entries) {
  Tally tally;
  for (const auto& entry : entries) {
    count(tally, entry);
  }
  for (const auto& [pid, slot] : tally.slots) {
    tally.status.slots_held += tally.pids.count(pid) > 0 ? 1 : 0;
  }
  return tally;
}

/// How many slots open-file locks hold: those that fdinfo shows held with
/// the data byte; and of the slot bytes of open files that it does not show
/// (other users' processes), at most as many as there are holds unseen.
int open_file_slot_holds(const Tally& tally, const OpenFileHolders& found) {
  const auto unseen_slots = std::count_if(tally.open_file_slots.begin(), tally.open_file_slots.end(),
                                          [&](int slot) { return found.seen_slots.count(slot) == 0; });
  const int unseen_holds = tally.open_file_holds - found.holds;
  return static_cast<int>(found.held_slots.size()) +
         std::max(0, std::min(static_cast<int>(unseen_slots), unseen_holds));
}

/// The file that `path` names, where it can be a lock.
Result<FileId> lock_file_id(const std::filesystem::path& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) {
    return Error(ErrorKind::open, "cannot read lock file", path.string(), errno);
  }
  if (auto why = why_not_a_lock(path)) {
    return Error(ErrorKind::lock, "cannot be a lock", path.string(), std::move(*why));
  }
  return FileId{info.st_dev, info.st_ino};
}

/// Adds to `tally` the holders of open-file locks on `file`, their slots,
/// and the slots they hold, as fdinfo shows them (open-file locks show no
/// pid in /proc/locks). Whether some of those holds have an open file that
/// no readable process has: another user's.
bool add_open_file_holders(Tally& tally, const FileId& file) {
  const auto found = open_file_holders(file);
  tally.pids.insert(found.pids.begin(), found.pids.end());
  tally.slots.insert(found.slots.begin(), found.slots.end());
  tally.status.slots_held += open_file_slot_holds(tally, found);
  return found.holds < tally.open_file_holds;
}

/// The processes of `pids` that status lists: not the caller, though it may
/// have inherited a descriptor that holds the lock (`status` run by the
/// command fasten runs): that hold still counts, and the process that passed
/// it on is listed; and no keeper whose fasten is listed.
std::set<long> holding_processes(std::set<long> pids) {
  pids.erase(getpid());
  leave_out_keepers(pids);
  return pids;
}

/// Where the kernel says the lock is held though no reading of /proc/locks
/// caught the holder's lines: its word stands, for one hold that cannot be
/// seen. Whether it did.
bool take_the_kernels_word(LockStatus& status, const CheckedReading& checked) {
  if (status.holds != 0 || !checked.kernel_state || *checked.kernel_state == LockState::free) {
    return false;
  }
  status.state = *checked.kernel_state;
  status.holds = 1;
  return true;
}

} // namespace

/// What /proc/PID/fdinfo/FD lists of open-file-description locks on `file`. fdinfo names the file as
/// major:minor:inode on its "lock:" lines, as /proc/locks does, so the descriptor's file itself is never
/// looked at: a stat() of /proc/PID/fd/FD would reach the file's mount, and a stalled NFS or FUSE mount would
/// stall status with it, beyond kill -9.
DescriptorHold held_through(const std::string& fdinfo, const FileId& file) {
  DescriptorHold held;
  const auto read = read_proc_file(fdinfo);
  if (!read) {
    return held; // gone
  }
  const std::string& text = read.value();
  for (std::size_t at = text.find("lock:"); at != std::string::npos; at = text.find("lock:", at + 1)) {
    const auto entry = parse_lock_line(text.substr(at + 5, text.find('\n', at) - at - 5));
    if (entry && entry->open_file_lock && !entry->waiting && entry->file == file) {
      held.exclusive = held.exclusive || (covers_data(*entry) && entry->write);
      held.data = held.data || covers_data(*entry);
      held.slot = held.slot ? held.slot : slot_of(*entry);
    }
  }
  return held;
}

bool status_supported() noexcept {
  return true;
}

Result<LockStatus> query_status(const std::filesystem::path& path) {
  const FileId file = FASTEN_TRY(lock_file_id(path));
  const CheckedReading checked = FASTEN_TRY(checked_reading_on(file, path));
  Tally tally = tally_of(checked.entries);
  bool unseen = tally.open_file_holds > 0 && add_open_file_holders(tally, file);
  LockStatus status = std::move(tally.status);
  status.holders = named(holding_processes(tally.pids), tally.slots);
  unseen = take_the_kernels_word(status, checked) || unseen;
  if (unseen) {
    status.holders.push_back(LockHolder{std::nullopt, {}, {}});
  }
  tally.flock_pids.erase(getpid());
  status.flock_holders = named(tally.flock_pids, {});
  return status;
}

Result<LockStatus> query_descriptor_status(NativeHandle descriptor) {
  // The open file, not whatever its path names now.
  return query_status("/proc/self/fd/" + std::to_string(descriptor));
}

} // namespace fasten
