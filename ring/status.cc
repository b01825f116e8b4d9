// Names of Status and Errc values (status.h), for messages, and the
// errno -> Errc mapping (os_error).
#include "ring/status.h"

#include <cerrno>
#include <system_error>

namespace shmring {

const char* to_string(Status s) {
  switch (s) {
    case Status::ok:
      return "ok";
    case Status::would_block:
      return "would block";
    case Status::timed_out:
      return "timed out";
    case Status::too_large:
      return "record larger than the ring accepts";
    case Status::closed:
      return "closed (end of stream)";
    case Status::peer_dead:
      return "peer died";
    case Status::interrupted:
      return "interrupted";
    case Status::corrupt:
      return "ring corrupt";
    case Status::overrun:
      return "overrun (the producer lapped this consumer)";
    case Status::removed:
      return "ring removed while in use: by `shm-ring rm`, IPC_RMID, or "
             "systemd RemoveIPC; no producer is attached and none can attach "
             "a removed ring";
  }
  return "unknown status";
}

const char* to_string(Errc e) {
  switch (e) {
    case Errc::not_found:
      return "not found";
    case Errc::exists:
      return "already exists";
    case Errc::permission_denied:
      return "permission denied";
    case Errc::invalid_argument:
      return "invalid argument";
    case Errc::not_shmring:
      return "not a shmring segment";
    case Errc::version_mismatch:
      return "layout version mismatch";
    case Errc::wrong_kind:
      return "wrong ring kind";
    case Errc::size_mismatch:
      return "size mismatch";
    case Errc::not_ready:
      return "segment not initialised";
    case Errc::role_taken:
      return "role already taken";
    case Errc::too_many_producers:
      return "too many producers";
    case Errc::removed:
      return "ring removed while in use: by `shm-ring rm`, IPC_RMID, or "
             "systemd RemoveIPC";
    case Errc::limit:
      return "system limit exceeded";
    case Errc::system:
      return "system error";
  }
  return "unknown error";
}

Error os_error(int err, const std::string& what) {
  const std::string msg = what + ": " + std::generic_category().message(err);
  switch (err) {
    case ENOENT:
      return {Errc::not_found, msg};
    case EEXIST:
      return {Errc::exists, msg};
    case EACCES:
    case EPERM:
      return {Errc::permission_denied, msg};
    case EIDRM:
      return {Errc::removed, msg};
    default:
      return {Errc::system, msg};
  }
}

}  // namespace shmring
