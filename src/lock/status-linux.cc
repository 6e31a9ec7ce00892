// `status` on Linux: who holds a lock file, from the kernel's own tables.
//
// /proc/locks lists every fcntl lock: its kind (POSIX for classic locks,
// OFDLCK for open-file-description locks), READ or WRITE, the owner's pid,
// the file as major:minor:inode, and the byte range; a request that waits is
// listed with "->" after the lock that blocks it. A classic lock names its
// process; an OFD lock shows pid -1, because it belongs to an open file that
// any number of processes may share. Those are found through
// /proc/PID/fdinfo/FD, which lists the locks held through that descriptor.
// Other users' /proc/PID/fd cannot be read without privileges: such a
// holder is reported with no pid.

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "lock/protocol.h"
#include "lock/status.h"

namespace fasten {

namespace {

struct FileKey {
  unsigned major;
  unsigned minor;
  std::uint64_t inode;
  bool operator==(const FileKey&) const = default;
};

/// One line of /proc/locks, or of a "lock:" line in /proc/PID/fdinfo/FD.
struct LockEntry {
  bool waiting = false;
  bool open_file_lock = false;
  bool write = false;
  long pid = -1;
  FileKey file{};
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
  if (!words || (kind != "POSIX" && kind != "OFDLCK")) {
    return std::nullopt; // flock(2) locks and leases are not ours
  }
  entry.open_file_lock = kind == "OFDLCK";
  entry.write = access == "WRITE";
  if (std::sscanf(device.c_str(), "%x:%x:%" SCNu64, &entry.file.major, &entry.file.minor,
                  &entry.file.inode) != 3) {
    return std::nullopt;
  }
  entry.start = std::stoll(start);
  if (end != "EOF") {
    entry.end = std::stoll(end);
  }
  return entry;
}

bool covers_data(const LockEntry& entry) {
  return entry.start <= protocol::k_data && (!entry.end || *entry.end >= protocol::k_data);
}

std::string command_line(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\0') {
    text.pop_back();
  }
  std::replace(text.begin(), text.end(), '\0', ' ');
  return text;
}

/// The pids of processes that hold a lock covering the data byte of `file`
/// through one of their descriptors, as /proc/PID/fdinfo shows.
std::set<long> open_file_holders(const FileKey& file) {
  std::set<long> pids;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) {
    return pids;
  }
  while (const dirent* process = readdir(proc)) {
    const std::string pid = process->d_name;
    if (pid.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const std::string fd_dir = "/proc/" + pid + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (fds == nullptr) {
      continue; // gone, or another user's
    }
    while (const dirent* fd = readdir(fds)) {
      struct stat target {};
      if (fd->d_name[0] == '.' || stat((fd_dir + "/" + fd->d_name).c_str(), &target) != 0 ||
          !(FileKey{major(target.st_dev), minor(target.st_dev), target.st_ino} == file)) {
        continue;
      }
      std::ifstream info("/proc/" + pid + "/fdinfo/" + fd->d_name);
      for (std::string line; std::getline(info, line);) {
        if (line.rfind("lock:", 0) != 0) {
          continue;
        }
        const auto entry = parse_lock_line(line.substr(5));
        if (entry && entry->open_file_lock && !entry->waiting && entry->file == file && covers_data(*entry)) {
          pids.insert(std::stol(pid));
        }
      }
    }
    closedir(fds);
  }
  closedir(proc);
  return pids;
}

} // namespace

Result<LockStatus> query_status(const std::filesystem::path& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) {
    return Error(ErrorKind::open, "cannot read lock file", path.string(), errno);
  }
  const FileKey file{major(info.st_dev), minor(info.st_dev), info.st_ino};
  std::ifstream locks("/proc/locks");
  if (!locks) {
    return Error(ErrorKind::system, "cannot read /proc/locks", path.string(), errno);
  }

  LockStatus status;
  std::set<long> pids;
  bool open_file_holds = false;
  for (std::string line; std::getline(locks, line);) {
    const auto entry = parse_lock_line(line);
    if (!entry || !(entry->file == file)) {
      continue;
    }
    if (entry->waiting) {
      ++status.waiting;
      continue;
    }
    if (!covers_data(*entry)) {
      continue; // the turnstile alone: a writer or readers on their way in
    }
    ++status.holds;
    if (entry->write) {
      status.state = LockState::exclusive;
    } else if (status.state == LockState::free) {
      status.state = LockState::shared;
    }
    if (entry->open_file_lock) {
      open_file_holds = true;
    } else {
      pids.insert(entry->pid);
    }
  }
  if (open_file_holds) {
    const auto found = open_file_holders(file);
    if (found.empty()) {
      status.holders.push_back(LockHolder{std::nullopt, {}, {}});
    }
    pids.insert(found.begin(), found.end());
  }
  for (long pid : pids) {
    status.holders.push_back(LockHolder{static_cast<int>(pid), command_line(pid), {}});
  }
  return status;
}

} // namespace fasten
