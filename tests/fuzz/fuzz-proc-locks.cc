// What status reads of the kernel's lock tables (status-linux.cc): the lines
// of /proc/locks, parsed one by one and tallied as status tallies those on
// one file, and the "lock:" lines of /proc/PID/fdinfo/N, read from a file as
// status reads them. Whatever the text: no crash, no exception, no hang.
//
// status-linux.cc keeps its parsers to itself (an anonymous namespace): this
// file takes it in whole, so that it fuzzes them as they are, without a seam
// in the library that only the fuzzer would use.

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "lock/status-linux.cc"

namespace {

/// A file that holds `text`, for held_through, which reads fdinfo by path:
/// a memfd, read back through /proc/self/fd.
std::string file_holding(const std::string& text) {
  static fasten::FileHandle file(memfd_create("fdinfo", MFD_CLOEXEC));
  if (!file.valid() || ftruncate(file.get(), 0) != 0 ||
      pwrite(file.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    std::abort();
  }
  return "/proc/self/fd/" + std::to_string(file.get());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // As reading_on reads /proc/locks: a line at a time, the entries on
  // one file (here, that of the first line that parses) tallied.
  std::vector<fasten::LockEntry> entries;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    auto entry = fasten::parse_lock_line(line);
    if (entry && (entries.empty() || entry->file == entries.front().file)) {
      entries.push_back(std::move(*entry));
    }
  }
  const auto tally = fasten::tally_of(entries);
  if (tally.status.holds < 0 || tally.status.waiting < 0 || tally.status.slots_held < 0) {
    std::abort();
  }
  (void)fasten::holds_data(entries);
  // As open_file_holders reads /proc/PID/fdinfo/N.
  const fasten::FileId file = entries.empty() ? fasten::FileId{} : entries.front().file;
  (void)fasten::held_through(file_holding(text), file);
  return 0;
}
