// The etcd backend of a build without libcurl or nlohmann-json (-Detcd=disabled):
// every etcd:// lock is unavailable, and says why.

#include "lock/etcd-lock.h"

namespace fasten {

namespace {

Error not_built(const std::string& name) {
  return Error(ErrorKind::unavailable, "this fasten was built without etcd support", name, 0);
}

} // namespace

bool etcd_supported() noexcept {
  return false;
}

Result<std::unique_ptr<Lock>> open_etcd_lock(const std::string& name, const RemoteOptions&) {
  return not_built(name);
}

Result<LockStatus> query_etcd_status(const std::string& name, const RemoteOptions&) {
  return not_built(name);
}

} // namespace fasten
