// Nested holds on Windows: none. A handle's LockFileEx locks cannot be seen
// from the handle, so a nested fasten cannot prove that its parent's hold is
// its own; it takes the lock as any other process does (nesting.h).

#include "lock/nesting.h"

namespace fasten {

bool nested_holds_supported() noexcept {
  return false;
}

Result<std::optional<InheritedHold>> find_inherited_hold(const std::filesystem::path&) {
  return std::optional<InheritedHold>();
}

std::optional<LockMode> held_by_an_ancestor(const std::filesystem::path&, const std::vector<int>&) {
  return std::nullopt;
}

std::optional<LockMode> descriptor_held_by_an_ancestor(NativeHandle, const std::vector<int>&) {
  return std::nullopt;
}

Result<std::unique_ptr<Lock>> reenter(const InheritedHold&, LockMode, const std::filesystem::path& path) {
  return Error(ErrorKind::misuse, "a hold cannot be re-entered on this system", path.string());
}

} // namespace fasten
