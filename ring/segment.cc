#include "ring/segment.h"

#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/permissions.hpp>
#include <boost/interprocess/sync/interprocess_semaphore.hpp>
#include <boost/interprocess/xsi_key.hpp>
#include <boost/interprocess/xsi_shared_memory.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <new>
#include <thread>

#include "ring/internal/liveness.h"
#include "ring/internal/sysv.h"
#include "ring/names.h"

namespace bip = boost::interprocess;

namespace shmring {

static_assert(sizeof(bip::interprocess_semaphore) <= layout::kSemaphoreBytes);
static_assert(alignof(bip::interprocess_semaphore) <= 8);

namespace {

bool is_pow2(std::uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

struct Segment::Mapping {
  std::unique_ptr<bip::mapped_region> region;
  bool read_only = false;  // SHM_RDONLY: attach_read_only()
};

Result<key_t> key_from_path(const std::string& path, int proj) {
  if (proj <= 0 || proj > 255) {
    return Error{Errc::invalid_argument,
                 "ftok project id must be 1..255 (a character), got " +
                     std::to_string(proj)};
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return os_error(err, "ftok path '" + path + "'");
  }
  const key_t k = ::ftok(path.c_str(), proj);
  if (k == -1) return os_error(errno, "ftok('" + path + "')");
  return k;
}

Result<key_t> parse_key(const std::string& text) {
  if (text.empty()) return Error{Errc::invalid_argument, "empty key"};
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 0);
  if (errno != 0 || end == nullptr || *end != '\0' || text[0] == '-' ||
      v > 0xffffffffULL) {
    return Error{Errc::invalid_argument,
                 "key '" + text + "' is not a 32-bit number (e.g. 0x5eed)"};
  }
  if (v == 0) {
    return Error{Errc::invalid_argument,
                 "key 0 is IPC_PRIVATE and cannot name a shared ring"};
  }
  return static_cast<key_t>(static_cast<std::uint32_t>(v));
}

Result<Ok> validate(const RingOptions& o) {
  if (o.kind != Kind::spsc && o.kind != Kind::mpsc && o.kind != Kind::slots &&
      o.kind != Kind::broadcast) {
    return Error{Errc::invalid_argument,
                 "kind must be spsc, mpsc, slots or broadcast"};
  }
  if (o.kind == Kind::broadcast &&
      (o.max_consumers > layout::kMaxConsumers || o.max_producers > 1)) {
    return Error{Errc::invalid_argument,
                 "a broadcast ring has one producer and at most " +
                     std::to_string(layout::kMaxConsumers) +
                     " consumers (max_consumers " +
                     std::to_string(o.max_consumers) + ")"};
  }
  if (o.kind != Kind::broadcast &&
      (o.max_consumers > 1 || o.overrun != Overrun::wait)) {
    return Error{Errc::invalid_argument,
                 "max_consumers and overrun apply to broadcast rings only"};
  }
  if (o.overrun != Overrun::wait && o.overrun != Overrun::drop_slow) {
    return Error{Errc::invalid_argument, "overrun must be wait or drop-slow"};
  }
  if (!is_pow2(o.capacity) || o.capacity < layout::kMinCapacity ||
      o.capacity > layout::kMaxCapacity) {
    return Error{Errc::invalid_argument,
                 "capacity " + std::to_string(o.capacity) +
                     " must be a power of two between " +
                     std::to_string(layout::kMinCapacity) + " and 2^40 bytes"};
  }
  if (o.wait != WaitStrategy::futex && o.wait != WaitStrategy::semaphore &&
      o.wait != WaitStrategy::spin) {
    return Error{Errc::invalid_argument,
                 "wait strategy must be futex, semaphore or spin"};
  }
  if (o.max_producers > layout::kMaxProducers ||
      (o.kind != Kind::mpsc && o.max_producers > 1)) {
    return Error{Errc::invalid_argument,
                 "max_producers must be <= 64 (and 1 for spsc and slots)"};
  }
  if (o.kind == Kind::slots &&
      (o.slot_size == 0 || o.slot_size > layout::max_slot_size(o.capacity))) {
    return Error{Errc::invalid_argument,
                 "a slots ring needs an element size (slot_size) between 1 "
                 "and half its capacity (" +
                     std::to_string(layout::max_slot_size(o.capacity)) +
                     " bytes), got " + std::to_string(o.slot_size)};
  }
  if (o.kind != Kind::slots && o.slot_size != 0) {
    return Error{Errc::invalid_argument,
                 "slot_size applies to slots rings only (this is " +
                     std::string(kind_name(o.kind)) + ")"};
  }
  if ((o.mode & ~0777u) != 0 || (o.mode & 0600u) != 0600u) {
    return Error{Errc::invalid_argument,
                 "mode must be octal permission bits including 0600"};
  }
  return Ok{};
}

Segment::Segment(std::unique_ptr<Mapping> m, key_t key, int shmid)
    : mapping_(std::move(m)), key_(key), shmid_(shmid) {
  auto* base = static_cast<std::byte*>(mapping_->region->get_address());
  control_ = reinterpret_cast<layout::ControlBlock*>(base);
  // Snapshot once; attach_validate() checks these copies, not the header.
  kind_ = control_->kind;
  data_ = base + layout::data_offset(kind_);
  if (kind_ == Kind::broadcast) {
    broadcast_ = reinterpret_cast<layout::BroadcastBlock*>(
        base + layout::kBroadcastOffset);
    max_consumers_ = broadcast_->max_consumers;
    overrun_ = broadcast_->overrun;
  }
  capacity_ = control_->capacity;
  wait_ = control_->wait_strategy;
  if (kind_ == Kind::slots) {
    slot_size_ = control_->slot_size;
    slot_count_ = layout::slot_count(capacity_, slot_size_);
  }
  // The role semaphore set must be the one created with this ring: same
  // key, shmring's size. A missing one (ipcrm by hand) leaves the Segment
  // usable for info and removal only (sem_id() == -1).
  key_t sem_key = 0;
  const int id = control_->sem_id;
  if (sem_count(id, &sem_key) == layout::kSemCount && sem_key == key_) {
    sem_id_ = id;
  }
}

Segment::Segment(Segment&&) noexcept = default;
Segment& Segment::operator=(Segment&&) noexcept = default;
Segment::~Segment() = default;

namespace {

Result<Segment> create_impl(key_t key, bool priv, const RingOptions& in);

}  // namespace

Result<Segment> Segment::create(key_t key, const RingOptions& options) {
  return create_impl(key, false, options);
}

Result<Segment> Segment::create_private(const RingOptions& options) {
  return create_impl(IPC_PRIVATE, true, options);
}

namespace {

struct Factory {
  static Result<Segment> make(std::unique_ptr<bip::mapped_region> region,
                              key_t key, int shmid, bool read_only = false) {
    auto m = std::make_unique<Segment::Mapping>();
    m->region = std::move(region);
    m->read_only = read_only;
    return Segment(std::move(m), key, shmid);
  }
};

Result<Segment> create_impl(key_t key, bool priv, const RingOptions& in) {
  RingOptions o = in;
  if (o.max_producers == 0) {
    o.max_producers = o.kind == Kind::mpsc ? layout::kMaxProducers : 1;
  }
  if (o.kind == Kind::broadcast && o.max_consumers == 0) {
    o.max_consumers = layout::kMaxConsumers;
  }
  if (auto v = validate(o); !v) return v.error();
  std::uint64_t size = layout::data_offset(o.kind) + o.capacity;
  const std::string name = priv ? std::string("private segment") : hex_key(key);

  int shmid = -1;
  if (o.hugepages) {
    // Boost has no SHM_HUGETLB: raw shmget. The kernel wants a whole
    // number of huge pages.
    const std::uint64_t huge = huge_page_bytes();
    if (huge == 0) {
      return Error{Errc::limit,
                   "cannot create huge-page segment " + name +
                       ": this kernel has no huge pages (no Hugepagesize in "
                       "/proc/meminfo)"};
    }
    size = (size + huge - 1) / huge * huge;
    shmid = ::shmget(
        key, size,
        IPC_CREAT | IPC_EXCL | SHM_HUGETLB | static_cast<int>(o.mode & 0777));
    if (shmid < 0) {
      const int err = errno;
      if (err == EEXIST) {
        return exists_error(name);
      }
      return huge_page_error(err, size, huge, name);
    }
  } else {
    // Boost's xsi_shared_memory has no IPC_PRIVATE flavour with IPC_EXCL
    // semantics we need here; both paths end in shmget.
    try {
      bip::xsi_shared_memory shm(bip::create_only, bip::xsi_key(key), size,
                                 bip::permissions(static_cast<int>(o.mode)));
      shmid = shm.get_shmid();
    } catch (const bip::interprocess_exception& ex) {
      const int err = ex.get_native_error();
      if (err == EINVAL || err == ENOSPC || err == ENOMEM) {
        return limit_error(err, size, name);
      }
      if (err == EEXIST) {
        return exists_error(name);
      }
      return os_error(err, "cannot create segment " + name);
    }
  }

  std::unique_ptr<bip::mapped_region> region;
  try {
    bip::xsi_shared_memory shm(bip::open_only, shmid);
    region = std::make_unique<bip::mapped_region>(shm, bip::read_write);
  } catch (const bip::interprocess_exception& ex) {
    bip::xsi_shared_memory::remove(shmid);
    return os_error(ex.get_native_error(), "cannot map segment " + name);
  }

  auto sem = create_sem_set(key, o.mode, name);
  if (!sem) {
    bip::xsi_shared_memory::remove(shmid);
    return sem.error();
  }

  // The kernel hands out zeroed segments; fill identity, then publish.
  auto* cb = static_cast<layout::ControlBlock*>(region->get_address());
  cb->sem_id = *sem;
  cb->magic = layout::kMagic;
  cb->version = layout::kLayoutVersion;
  cb->kind = o.kind;
  cb->capacity = o.capacity;
  cb->segment_size = size;
  cb->data_offset = layout::data_offset(o.kind);
  if (o.kind == Kind::broadcast) {
    // Published with the identity by the release store of `state` below.
    auto* bb = reinterpret_cast<layout::BroadcastBlock*>(
        static_cast<std::byte*>(region->get_address()) +
        layout::kBroadcastOffset);
    bb->max_consumers = o.max_consumers;
    bb->overrun = o.overrun;
  }
  cb->max_producers = o.max_producers;
  cb->slot_size = o.slot_size;
  cb->wait_strategy = o.wait;
  cb->flags = o.hugepages ? layout::kFlagHugePages : 0;
  cb->creator_pid = ::getpid();
  cb->creator_token = self_token();
  cb->pid_namespace = pid_namespace_id();
  // Handles join the wake-up handshake when they are created (wait.h); a
  // fresh ring is in membarrier mode with no light process joined.
  // relaxed: published by the release store of `state` below.
  cb->wake.mode.store(static_cast<std::uint32_t>(layout::WakeMode::membarrier),
                      std::memory_order_relaxed);
  // relaxed: published by the release store of `state` below.
  cb->wake.light_joined.store(0, std::memory_order_relaxed);
  new (cb->data_sem) bip::interprocess_semaphore(0);
  new (cb->space_sem) bip::interprocess_semaphore(0);
  // release: pairs with the acquire load of `state` in attach_validate().
  cb->state.store(static_cast<std::uint32_t>(layout::State::ready),
                  std::memory_order_release);
  return Factory::make(std::move(region), key, shmid);
}

Result<Segment> attach_validate(int shmid, key_t key, const std::string& name,
                                std::optional<Kind> expect,
                                bool read_only = false) {
  struct shmid_ds ds {};
  if (::shmctl(shmid, IPC_STAT, &ds) != 0) {
    return os_error(errno, "cannot stat segment " + name);
  }
  const std::uint64_t segsz = ds.shm_segsz;
  if (segsz < layout::kDataOffset + layout::kMinCapacity) {
    return Error{Errc::not_shmring,
                 "segment " + name + " (" + std::to_string(segsz) +
                     " bytes) is too small to be a shmring ring; another "
                     "program may use this key (ftok collision?)"};
  }
  std::unique_ptr<bip::mapped_region> region;
  try {
    bip::xsi_shared_memory shm(bip::open_only, shmid);
    region = std::make_unique<bip::mapped_region>(
        shm, read_only ? bip::read_only : bip::read_write);
  } catch (const bip::interprocess_exception& ex) {
    return os_error(ex.get_native_error(), "cannot attach segment " + name);
  }
  auto* cb = static_cast<layout::ControlBlock*>(region->get_address());
  // The creator publishes `state` last. A zeroed header is a creator still
  // at work (wait a little); a foreign magic is refused at once.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (;;) {
    // acquire: pairs with the release store of `state` in create_impl().
    const auto st = cb->state.load(std::memory_order_acquire);
    if (st == static_cast<std::uint32_t>(layout::State::ready)) break;
    // relaxed: only compared, never trusted before `state` is ready.
    const std::uint64_t magic = std::atomic_ref<std::uint64_t>(cb->magic).load(
        std::memory_order_relaxed);
    if ((magic != 0 && magic != layout::kMagic) || st > 1) {
      return Error{Errc::not_shmring,
                   "segment " + name +
                       " was not created by shmring (bad magic); another "
                       "program may use this key (ftok collision?)"};
    }
    if (std::chrono::steady_clock::now() > deadline) {
      const std::string remove_hint =
          name.rfind("shmid ", 0) == 0
              ? "`shm-ring rm --id " + name.substr(6) + " --force`"
              : "`shm-ring rm --key " + name + " --force`";
      return Error{Errc::not_ready,
                   "segment " + name +
                       " was never initialised (its creator died during "
                       "create?); only a forced removal takes it: " +
                       remove_hint};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Kind, capacity and wait strategy are validated on the Segment's own
  // copies (taken here), so what we check is what Producer/Consumer use.
  auto seg = Factory::make(std::move(region), key, shmid, read_only);
  const Kind kind = seg->kind();
  const std::uint64_t capacity = seg->capacity();
  if (cb->magic != layout::kMagic) {
    return Error{Errc::not_shmring, "segment " + name +
                                        " was not created by shmring (bad "
                                        "magic); ftok collision?"};
  }
  if (cb->version != layout::kLayoutVersion) {
    return Error{Errc::version_mismatch,
                 "segment " + name + " was created by shmring layout v" +
                     std::to_string(cb->version) + ", this is v" +
                     std::to_string(layout::kLayoutVersion)};
  }
  if (kind != Kind::spsc && kind != Kind::mpsc && kind != Kind::slots &&
      kind != Kind::broadcast) {
    return Error{Errc::not_shmring,
                 "segment " + name + " has unknown kind " +
                     std::to_string(static_cast<unsigned>(kind))};
  }
  if (expect && kind != *expect) {
    return Error{Errc::wrong_kind,
                 "segment " + name +
                     (kind == Kind::slots ? " is a " : " is an ") +
                     kind_name(kind) + " ring, expected " + kind_name(*expect)};
  }
  if (!is_pow2(capacity) || capacity < layout::kMinCapacity ||
      capacity > layout::kMaxCapacity ||
      cb->data_offset != layout::data_offset(kind) ||
      cb->segment_size != segsz || cb->data_offset + capacity > segsz) {
    return Error{Errc::size_mismatch,
                 "segment " + name + " header says capacity " +
                     std::to_string(capacity) + " + offset " +
                     std::to_string(cb->data_offset) + " in a segment of " +
                     std::to_string(cb->segment_size) +
                     " bytes, but the kernel says it has " +
                     std::to_string(segsz) + " bytes"};
  }
  if (cb->max_producers == 0 || cb->max_producers > layout::kMaxProducers ||
      (kind != Kind::mpsc && cb->max_producers != 1) ||
      (kind == Kind::slots &&
       (seg->slot_size() == 0 ||
        seg->slot_size() > layout::max_slot_size(capacity))) ||
      (kind != Kind::slots && cb->slot_size != 0) ||
      (kind == Kind::broadcast &&
       (seg->max_consumers() == 0 ||
        seg->max_consumers() > layout::kMaxConsumers ||
        (seg->overrun() != Overrun::wait &&
         seg->overrun() != Overrun::drop_slow))) ||
      (seg->wait_strategy() != WaitStrategy::futex &&
       seg->wait_strategy() != WaitStrategy::semaphore &&
       seg->wait_strategy() != WaitStrategy::spin)) {
    return Error{Errc::not_shmring,
                 "segment " + name + " has an invalid header"};
  }
  return seg;
}

Result<Segment> attach_key(key_t key, std::optional<Kind> expect,
                           bool read_only) {
  const std::string name = hex_key(key);
  int shmid = -1;
  int err = 0;
  if (read_only) {
    // No permission bits asked for: shmat(SHM_RDONLY) checks read access.
    shmid = ::shmget(key, 0, 0);
    if (shmid < 0) err = errno;
  } else {
    try {
      bip::xsi_shared_memory shm(bip::open_only, bip::xsi_key(key));
      shmid = shm.get_shmid();
    } catch (const bip::interprocess_exception& ex) {
      err = ex.get_native_error();
    }
  }
  if (shmid < 0) {
    if (err == ENOENT) {
      return Error{Errc::not_found, "no ring with key " + name +
                                        " (create it with --create or "
                                        "`shm-ring create`)"};
    }
    return os_error(err, "cannot open segment " + name);
  }
  return attach_validate(shmid, key, name, expect, read_only);
}

Result<Segment> attach_shmid(int shmid, std::optional<Kind> expect,
                             bool read_only) {
  struct shmid_ds ds {};
  if (::shmctl(shmid, IPC_STAT, &ds) != 0) {
    const int err = errno;
    if (err == EINVAL || err == EIDRM) {
      return Error{Errc::not_found,
                   "no segment with shmid " + std::to_string(shmid)};
    }
    return os_error(err, "cannot stat shmid " + std::to_string(shmid));
  }
  return attach_validate(shmid, ds.shm_perm.__key,
                         "shmid " + std::to_string(shmid), expect, read_only);
}

}  // namespace

Result<Segment> Segment::attach(key_t key, std::optional<Kind> expect) {
  return attach_key(key, expect, false);
}

Result<Segment> Segment::attach_id(int shmid, std::optional<Kind> expect) {
  return attach_shmid(shmid, expect, false);
}

Result<Segment> Segment::attach_read_only(key_t key,
                                          std::optional<Kind> expect) {
  return attach_key(key, expect, true);
}

Result<Segment> Segment::attach_id_read_only(int shmid,
                                             std::optional<Kind> expect) {
  return attach_shmid(shmid, expect, true);
}

bool Segment::read_only() const { return mapping_ && mapping_->read_only; }

Result<Segment> Segment::attach_or_create(key_t key,
                                          const RingOptions& options) {
  AttachOrCreate how;
  how.options = options;
  how.expect_kind = options.kind;
  how.expect_capacity = options.capacity;
  how.expect_slot_size = options.slot_size;
  return attach_or_create(key, how);
}

Result<Segment> Segment::attach_or_create(key_t key, const AttachOrCreate& how,
                                          bool* created) {
  if (created != nullptr) *created = false;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto seg = attach(key, how.expect_kind);
    if (seg) {
      if (how.expect_capacity && seg->capacity() != *how.expect_capacity) {
        return Error{Errc::size_mismatch,
                     "ring " + hex_key(key) + " exists with capacity " +
                         std::to_string(seg->capacity()) + ", asked for " +
                         std::to_string(*how.expect_capacity)};
      }
      if (how.expect_wait && seg->wait_strategy() != *how.expect_wait) {
        return Error{Errc::wrong_kind,
                     "ring " + hex_key(key) + " exists with wait strategy " +
                         wait_name(seg->wait_strategy()) + ", asked for " +
                         wait_name(*how.expect_wait)};
      }
      if (how.expect_slot_size && seg->slot_size() != *how.expect_slot_size) {
        return Error{Errc::wrong_kind,
                     "ring " + hex_key(key) + " exists with " +
                         std::to_string(seg->slot_size()) +
                         "-byte elements, asked for " +
                         std::to_string(*how.expect_slot_size)};
      }
      return seg;
    }
    if (seg.error().code != Errc::not_found || !how.create) return seg;
    auto made = create(key, how.options);
    if (made && created != nullptr) *created = true;
    if (made || made.error().code != Errc::exists) return made;
    // Lost a create race: attach to the winner's segment.
  }
  return Error{Errc::system, "ring " + hex_key(key) +
                                 " keeps appearing and vanishing; giving up"};
}

Result<Ok> Segment::remove(key_t key, bool force) {
  if (!force) {
    auto seg = attach(key);
    if (!seg) return seg.error();
    return seg->remove();
  }
  const int shmid = ::shmget(key, 0, 0);
  if (shmid < 0) return os_error(errno, "no segment " + hex_key(key));
  // The ring's semaphore set under the same key, if it is shmring's.
  const int semid = ::semget(key, 0, 0);
  if (semid >= 0 && sem_count(semid) == layout::kSemCount) {
    ::semctl(semid, 0, IPC_RMID);
  }
  if (::shmctl(shmid, IPC_RMID, nullptr) != 0) {
    return os_error(errno, "cannot remove segment " + hex_key(key));
  }
  return Ok{};
}

Result<Ok> Segment::remove() {
  // The set has no deferred removal: peers still attached see it vanish
  // and fall back to pid tokens for liveness (liveness.h).
  if (sem_id_ >= 0) ::semctl(sem_id_, 0, IPC_RMID);
  sem_id_ = -1;  // roles are taken by pid token from now on (roles.cc)
  if (::shmctl(shmid_, IPC_RMID, nullptr) != 0) {
    const int err = errno;
    if (err == EINVAL || err == EIDRM) return Ok{};  // already gone
    return os_error(err, "cannot remove segment " + hex_key(key_));
  }
  return Ok{};
}

void Segment::remove_role_semaphores(int shmid, int semid) {
  if (semid < 0) {
    struct shmid_ds ds {};
    if (::shmctl(shmid, IPC_STAT, &ds) != 0 || ds.shm_perm.__key == IPC_PRIVATE)
      return;
    semid = ::semget(ds.shm_perm.__key, 0, 0);
    if (sem_count(semid) != layout::kSemCount) return;
  }
  ::semctl(semid, 0, IPC_RMID);
}

}  // namespace shmring
