// Results of ring operations and of segment set-up. Operations on the hot
// path return a Status (why it did not succeed); set-up returns an Error that
// carries a message a user can act on.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace shmring {

// Outcome of reserve / peek / write / read.
enum class Status {
  ok,
  would_block,  // try_* only: full (producer) or empty (consumer)
  timed_out,    // the blocking call's timeout expired
  too_large,    // record larger than max_record_size(): can never fit
  closed,       // consumer: end of stream (every producer closed, drained)
  peer_dead,    // producer: consumer gone; consumer: last producer died
  interrupted,  // a signal arrived, or shmring::interrupt() was called
  corrupt,      // the segment holds values no correct peer writes
  overrun,      // consumer of a drop-slow broadcast ring: the producer
                // lapped it; Subscriber::lost_bytes() says how much was lost,
                // the next peek delivers the oldest intact record
  removed,      // consumer: the ring was removed (`shm-ring rm`, IPC_RMID,
                // systemd RemoveIPC) and no producer is attached; none can
                // attach a removed ring, so nothing more can come
};

const char* to_string(Status s);

// Asks every blocking call in this process to return Status::interrupted.
// Async-signal-safe: call it from a SIGINT/SIGTERM handler. A wait in another
// thread notices within one sleep slice or at once on EINTR.
void interrupt() noexcept;
void clear_interrupt() noexcept;
bool interrupt_requested() noexcept;

// Why a segment or role could not be set up.
enum class Errc {
  not_found,           // no segment under this key / ftok path missing
  exists,              // exclusive create, but the key is taken
  permission_denied,   // mode or owner forbids it
  invalid_argument,    // capacity, key, kind ... out of range
  not_shmring,         // the segment was not created by shmring
  version_mismatch,    // created by another layout version
  wrong_kind,          // spsc vs mpsc
  size_mismatch,       // header and shm_segsz disagree
  not_ready,           // creator never finished initialising
  role_taken,          // a live producer/consumer already holds the role
  too_many_producers,  // every producer slot is held by a live process
  removed,             // the segment was removed (IPC_RMID)
  limit,               // exceeds SHMMAX / SHMALL
  system,              // any other OS error
};

const char* to_string(Errc e);

struct Error {
  Errc code;
  std::string message;
};

// The Error for a failed system call's errno `err`: "<what>: <strerror>",
// with ENOENT -> not_found, EEXIST -> exists, EACCES/EPERM ->
// permission_denied, EIDRM -> removed, anything else -> system.
Error os_error(int err, const std::string& what);

// A value or an Error. Small on purpose: C++23's std::expected is not in
// g++ 12.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  explicit operator bool() const { return v_.index() == 0; }
  bool ok() const { return v_.index() == 0; }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  T* operator->() { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};

}  // namespace shmring
