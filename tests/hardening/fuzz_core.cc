#include "tests/hardening/fuzz_core.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "ring/shmring.h"
#include "ring/internal/segment_access.h"

namespace shmring::hardening {
namespace {

using layout::ControlBlock;

// ---------------------------------------------------------------- input

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
  bool empty() const { return pos_ >= in_.size(); }
  // Past the end every read yields 0: a truncated op still runs.
  std::uint8_t u8() { return pos_ < in_.size() ? in_[pos_++] : 0; }
  std::uint16_t u16() {
    const std::uint16_t lo = u8();
    return static_cast<std::uint16_t>(lo | (u8() << 8));
  }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{u8()} << (8 * i);
    return v;
  }

 private:
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
};

// ------------------------------------------------------ control block map

struct Field {
  std::string name;
  std::size_t offset;
  std::size_t width;  // 4 or 8
};

const std::vector<Field>& fields() {
  static const std::vector<Field> f = [] {
    std::vector<Field> v = {
        {"magic", offsetof(ControlBlock, magic), 8},
        {"version", offsetof(ControlBlock, version), 4},
        {"kind", offsetof(ControlBlock, kind), 4},
        {"capacity", offsetof(ControlBlock, capacity), 8},
        {"segment_size", offsetof(ControlBlock, segment_size), 8},
        {"data_offset", offsetof(ControlBlock, data_offset), 8},
        {"max_producers", offsetof(ControlBlock, max_producers), 4},
        {"wait_strategy", offsetof(ControlBlock, wait_strategy), 4},
        {"flags", offsetof(ControlBlock, flags), 4},
        {"creator_pid", offsetof(ControlBlock, creator_pid), 4},
        {"creator_token", offsetof(ControlBlock, creator_token), 8},
        {"state", offsetof(ControlBlock, state), 4},
        {"pid_namespace", offsetof(ControlBlock, pid_namespace), 8},
        {"head", offsetof(ControlBlock, head), 8},
        {"tail", offsetof(ControlBlock, tail), 8},
        {"release_to", offsetof(ControlBlock, release_to), 8},
        {"sem_id", offsetof(ControlBlock, sem_id), 4},
        {"data_ready.seq", offsetof(ControlBlock, data_ready), 4},
        {"data_ready.waiters", offsetof(ControlBlock, data_ready) + 4, 4},
        {"space_ready.seq", offsetof(ControlBlock, space_ready), 4},
        {"space_ready.waiters", offsetof(ControlBlock, space_ready) + 4, 4},
        {"consumer.owner", offsetof(ControlBlock, consumer), 8},
        {"consumer.generation", offsetof(ControlBlock, consumer) + 8, 4},
        {"producers_attached", offsetof(ControlBlock, producers_attached), 4},
        {"producers_seen", offsetof(ControlBlock, producers_seen), 4},
        {"producers_died", offsetof(ControlBlock, producers_died), 4},
        {"consumers_seen", offsetof(ControlBlock, consumers_seen), 4},
        {"consumers_died", offsetof(ControlBlock, consumers_died), 4},
        {"records_reclaimed", offsetof(ControlBlock, records_reclaimed), 4},
        {"last_exit", offsetof(ControlBlock, last_exit), 4},
    };
    // The semaphores are opaque glibc bytes: mutate them word by word.
    for (std::size_t i = 0; i < layout::kSemaphoreBytes; i += 8) {
      v.push_back({"data_sem+" + std::to_string(i),
                   offsetof(ControlBlock, data_sem) + i, 8});
      v.push_back({"space_sem+" + std::to_string(i),
                   offsetof(ControlBlock, space_sem) + i, 8});
    }
    for (std::size_t s : {0, 1, 2, 63}) {
      const std::size_t base = offsetof(ControlBlock, producers) +
                               s * sizeof(layout::Slot);
      v.push_back({"producers[" + std::to_string(s) + "].owner", base, 8});
      v.push_back(
          {"producers[" + std::to_string(s) + "].generation", base + 8, 4});
    }
    return v;
  }();
  return f;
}

std::uint64_t load_word(const std::byte* p, std::size_t width) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, width);  // little endian, as the segment is
  return v;
}

// A hostile peer's store: a plain word store through its own mapping.
void store_word(std::byte* p, std::size_t width, std::uint64_t v) {
  if (width == 8 && reinterpret_cast<std::uintptr_t>(p) % 8 == 0) {
    // relaxed: single-threaded fuzzing; atomic only so the word is written
    // the way the library's own atomics expect.
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(p))
        .store(v, std::memory_order_relaxed);
  } else if (width == 4 && reinterpret_cast<std::uintptr_t>(p) % 4 == 0) {
    std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(p))
        .store(static_cast<std::uint32_t>(v), std::memory_order_relaxed);
  } else {
    std::memcpy(p, &v, width);
  }
}

// A token no running process has: pid above any pid_max (2^22).
constexpr ProcessToken kDeadToken = (std::uint64_t{0x3ffffff0} << 32) | 12345;

// The statuses a record ring's calls may return here (the core's rings
// are removed at once, so a reader with no producer yet says removed).
bool valid(Status s) {
  return static_cast<unsigned>(s) <= static_cast<unsigned>(Status::corrupt) ||
         s == Status::removed;
}

std::uint8_t pattern(std::uint64_t seq, std::size_t i) {
  return static_cast<std::uint8_t>(seq * 131 + i * 7 + (i >> 8));
}

// ---------------------------------------------------------------- runner

// A record as the model expects the consumer to deliver it (ring order).
struct Expected {
  std::uint64_t seq;
  std::uint32_t size;
  std::uint16_t type;
  bool committed;
  int who;  // producer handle
};

class Runner {
 public:
  explicit Runner(std::span<const std::uint8_t> in)
      : in_(in), trace_(std::getenv("SHMRING_FUZZ_TRACE") != nullptr) {}
  FuzzResult run();

 private:
  void fail(const std::string& what) {
    if (out_.failure.empty()) out_.failure = what;
  }
  bool failed() const { return !out_.failure.empty(); }

  bool build();
  void attach_guest();
  void step(std::uint8_t op);
  void finish();

  // Mutations (through the host mapping: the hostile peer).
  std::uint64_t value(std::uint8_t sel, std::uint64_t cur);
  void mutate(std::uint8_t op);
  std::vector<std::uint64_t> record_offsets() const;

  // Producer side.
  bool produce(int who, std::size_t size, std::size_t used, int mode,
               std::uint16_t type, std::uint64_t wait_us);
  void close_producer(int who);
  void attach_producer(int who);
  void check_reservation(int who, const Reservation& r, std::size_t size);

  // Consumer side.
  Status consume_one(Peeked p);
  void check_record(const Record& rec);
  void release();
  void close_consumer();
  void attach_consumer(Segment& seg);
  void note(Status s, const char* what);

  // SHMRING_FUZZ_TRACE=1: narrate the program on stderr (triage).
  template <class... A>
  void trace(const char* fmt, A... args) {
    if (trace_) std::fprintf(stderr, fmt, args...);
  }

  Reader in_;
  bool trace_;
  FuzzResult out_;

  // Scenario.
  Kind kind_ = Kind::spsc;
  WaitStrategy wait_ = WaitStrategy::futex;
  std::uint64_t capacity_ = 256;
  std::uint8_t expect_sel_ = 0;  // attach_id's expected kind: 1 right, 2 wrong

  // Declared before the handles: handles are destroyed first.
  std::optional<Segment> host_;   // creator's mapping; mutations go here
  std::optional<Segment> guest_;  // the attacher's mapping
  std::optional<Producer> prod_[2];
  std::optional<Consumer> cons_;
  Segment* cons_seg_ = nullptr;

  // Model.
  std::deque<Expected> ring_;    // not yet peeked, ring order
  std::deque<Expected> peeked_;  // peeked, not released
  std::uint64_t next_seq_ = 1;
  std::optional<std::uint64_t> open_[2];  // seq of an open reservation
};

std::uint64_t Runner::value(std::uint8_t sel, std::uint64_t cur) {
  const ControlBlock* cb = shmring::detail::control(*host_);
  const std::uint64_t cap = capacity_;
  const std::uint64_t head = cb->head.load(std::memory_order_relaxed);
  const std::uint64_t tail = cb->tail.load(std::memory_order_relaxed);
  const std::uint32_t tag0 = layout::owner_tag(
      0, cb->producers[0].generation.load(std::memory_order_relaxed));
  const int slot1 = prod_[1] ? prod_[1]->producer_index() : 1;
  const std::uint32_t tag1 = layout::owner_tag(
      static_cast<std::uint32_t>(slot1),
      cb->producers[slot1].generation.load(std::memory_order_relaxed));
  switch (sel) {
    case 0: return 0;
    case 1: return 1;
    case 2: return ~0ULL;
    case 3: return cap;
    case 4: return cap - 1;
    case 5: return cap + 8;
    case 6: return cur + 8;
    case 7: return cur - 8;
    case 8: return cur + cap;
    case 9: return cur - cap;
    case 10: return cur + 3;
    case 11: return 1ULL << 63;
    case 12: return ~0ULL - 7;
    case 13: return self_token();
    case 14: return kDeadToken;
    case 15: return layout::kMagic;
    case 16: return layout::kLayoutVersion;
    case 17: return layout::kLayoutVersion + 1;
    case 18: return 2;
    case 19: return 3;
    case 20: return layout::kMaxProducers;
    case 21: return layout::kMaxProducers + 1;
    case 22: return cur * 2;
    case 23: return head;
    case 24: return tail;
    case 25: return 0x7fffffff;
    case 26: return layout::kMaxCapacity;
    case 27: return std::uint64_t{tag0} + 1;  // a claim-lock word
    case 28: return std::uint64_t{tag1} + 1;  // the guest producer's lock word
    case 29: return layout::padding_word(8);
    case 30: return layout::encode_busy(16, tag1);
    case 31: return layout::encode_busy(16, tag0);
    case 32: return cur ^ layout::kBusy;
    case 33: return cur ^ layout::kPadding;
    case 34: return cur | (7ULL << 32);                       // max slack
    case 35: return (cur & ~0xffffffffULL) | 0xfffffff8ULL;   // huge span
    case 36: return (cur & ~0xffffffffULL) | (cap / 2 + 8);   // > max span
    case 37: return (cur & ~0xffffffffULL) | cap;             // whole ring
    case 38: return tail + cap;
    case 39: return head - 8;
    default: return in_.u64();
  }
}

std::vector<std::uint64_t> Runner::record_offsets() const {
  // Walks the headers between head and tail as a reader would, stopping at
  // the first implausible one.
  const ControlBlock* cb = shmring::detail::control(*host_);
  std::uint64_t pos = cb->head.load(std::memory_order_relaxed);
  const std::uint64_t tail = cb->tail.load(std::memory_order_relaxed);
  std::vector<std::uint64_t> offs;
  while (pos < tail && pos % 8 == 0 && offs.size() < capacity_ / 8) {
    const std::uint64_t off = pos & (capacity_ - 1);
    const std::uint64_t w = load_word(shmring::detail::ring_data(*host_) + off, 8);
    const auto h = layout::decode(w);
    offs.push_back(off);
    if (h.span < 8 || off + h.span > capacity_) break;
    pos += h.span;
  }
  if (offs.empty()) {
    offs.push_back(cb->head.load(std::memory_order_relaxed) &
                   (capacity_ - 8));
  }
  return offs;
}

void Runner::mutate(std::uint8_t op) {
  out_.mutated = true;
  std::byte* cbase = reinterpret_cast<std::byte*>(shmring::detail::control(*host_));
  std::byte* data = shmring::detail::ring_data(*host_);
  switch (op % kOpCount) {
    case kSetField: {
      const auto& f = fields()[in_.u8() % fields().size()];
      const std::uint64_t cur = load_word(cbase + f.offset, f.width);
      const std::uint64_t v = value(in_.u8(), cur);
      trace("  set %s: %#llx -> %#llx\n", f.name.c_str(),
            static_cast<unsigned long long>(cur), static_cast<unsigned long long>(v));
      store_word(cbase + f.offset, f.width, v);
      break;
    }
    case kSetHeader: {
      const auto offs = record_offsets();
      const std::uint64_t off = offs[in_.u8() % offs.size()];
      const std::uint64_t cur = load_word(data + off, 8);
      const std::uint64_t v = value(in_.u8(), cur);
      trace("  set header @%llu: %#llx -> %#llx\n", static_cast<unsigned long long>(off),
            static_cast<unsigned long long>(cur), static_cast<unsigned long long>(v));
      store_word(data + off, 8, v);
      break;
    }
    case kSetHeaderAt: {
      const std::uint64_t off = in_.u16() & (capacity_ - 1) & ~7ULL;
      const std::uint64_t cur = load_word(data + off, 8);
      const std::uint64_t v = value(in_.u8(), cur);
      trace("  set word @%llu: %#llx -> %#llx\n", static_cast<unsigned long long>(off),
            static_cast<unsigned long long>(cur), static_cast<unsigned long long>(v));
      store_word(data + off, 8, v);
      break;
    }
    case kSetDataByte: {
      const std::uint64_t off = in_.u16() & (capacity_ - 1);
      data[off] = static_cast<std::byte>(in_.u8());
      break;
    }
    default:
      break;
  }
}

void Runner::note(Status s, const char* what) {
  trace("  %s -> %s\n", what, valid(s) ? to_string(s) : "INVALID");
  if (!valid(s)) {
    fail(std::string(what) + " returned an invalid Status " +
         std::to_string(static_cast<int>(s)));
    return;
  }
  if (s == Status::corrupt) {
    ++out_.corrupt_results;
    if (!out_.mutated) fail(std::string(what) + " said corrupt on an intact ring");
  }
}

// ---------------------------------------------------------------- build

bool Runner::build() {
  const std::uint8_t s0 = in_.u8();
  const std::uint8_t s1 = in_.u8();
  const std::uint8_t s2 = in_.u8();
  const std::uint8_t s3 = in_.u8();
  expect_sel_ = in_.u8();
  kind_ = (s0 & 1) ? Kind::mpsc : Kind::spsc;
  trace("scenario %02x %02x %02x %02x %02x\n", s0, s1, s2, s3, expect_sel_);
  static constexpr WaitStrategy kWaits[] = {
      WaitStrategy::futex, WaitStrategy::semaphore, WaitStrategy::spin,
      WaitStrategy::futex};
  wait_ = kWaits[(s0 >> 1) & 3];
  static constexpr std::uint64_t kCaps[] = {256, 1024, 4096, 65536};
  capacity_ = kCaps[(s0 >> 3) & 3];

  RingOptions o;
  o.kind = kind_;
  o.capacity = capacity_;
  o.wait = wait_;
  auto made = Segment::create_private(o);
  if (!made) {
    fail("create_private: " + made.error().message);
    return false;
  }
  host_.emplace(std::move(made).value());
  // Marked for removal at once: the mappings keep it alive, and a crash or
  // an early return cannot leak it. Linux still lets attach_id map it.
  if (!host_->remove()) {
    fail("remove failed");
    return false;
  }

  // Start position: 0, just before a wrap, far out, or just before the
  // 64-bit positions overflow (no correct ring gets there: counts as a
  // mutation).
  ControlBlock* cb = shmring::detail::control(*host_);
  std::uint64_t start = 0;
  switch ((s0 >> 5) & 3) {
    case 0: start = 0; break;
    case 1: start = 3 * capacity_ - 8 * (s3 % (capacity_ / 16) + 1); break;
    case 2: start = (1ULL << 62) + capacity_ / 2; break;
    case 3:
      start = ~0ULL - capacity_ / 2 + 1;
      out_.mutated = true;
      break;
  }
  // relaxed: nothing is attached yet.
  cb->head.store(start, std::memory_order_relaxed);
  cb->tail.store(start, std::memory_order_relaxed);

  attach_producer(0);
  if (!prod_[0]) {
    fail("builder producer could not attach to a fresh ring");
    return false;
  }
  // Builder records: sizes from a small generator seeded by s2.
  const unsigned records = s1 % 48;
  std::uint32_t x = 0x9e3779b9u ^ (s2 * 0x85ebca6bu);
  const std::size_t max = prod_[0]->max_record_size();
  for (unsigned i = 0; i < records; ++i) {
    x = x * 1664525u + 1013904223u;
    std::size_t size = (x >> 8) % ((s2 & 3) == 0 ? 24 : (s2 & 3) == 1 ? 200 : max + 1);
    if (!produce(0, size, size, 0, static_cast<std::uint16_t>(i * 7), 0)) break;
  }
  // A builder consumer reads and releases a few, then leaves.
  attach_consumer(*host_);
  if (!cons_) {
    fail("builder consumer could not attach to a fresh ring");
    return false;
  }
  for (unsigned i = 0; i < (s2 >> 4); ++i) {
    if (consume_one(cons_->try_peek()) != Status::ok) break;
    if (i % 3 == 2) release();
  }
  release();
  close_consumer();
  // MPSC: the builder may leave a claimed, uncommitted (busy) record.
  if (kind_ == Kind::mpsc && (s3 & 0x80) && (s1 & 0x80)) {
    (void)produce(0, 8 + s3 % 32, 0, 3, 0, 0);
  }
  // Does the builder producer stay (a live peer holding its role)?
  if ((s1 & 0x80) == 0) close_producer(0);
  return !failed();
}

void Runner::attach_guest() {
  const std::uint8_t expect_sel = expect_sel_;
  // A correct creator never leaves state 0 behind for long; an attacher
  // waits 2 s for it (Errc::not_ready). That path has its own test in
  // bad_input_test.cc; here it would only slow the fuzzer down.
  ControlBlock* cb = shmring::detail::control(*host_);
  if (cb->state.load(std::memory_order_relaxed) == 0) {
    cb->state.store(2, std::memory_order_relaxed);
  }
  std::optional<Kind> expect;
  if (expect_sel % 4 == 1) expect = kind_;
  if (expect_sel % 4 == 2) expect = kind_ == Kind::spsc ? Kind::mpsc : Kind::spsc;
  trace("attach_id (expect %d)\n", expect ? static_cast<int>(*expect) : 0);
  auto g = Segment::attach_id(host_->id(), expect);
  if (!g) trace("  -> %s\n", g.error().message.c_str());
  if (!g) {
    const Error& e = g.error();
    const bool allowed =
        e.code == Errc::not_shmring || e.code == Errc::version_mismatch ||
        e.code == Errc::wrong_kind || e.code == Errc::size_mismatch;
    if (!allowed) {
      fail(std::string("attach_id: unexpected error ") + to_string(e.code) +
           ": " + e.message);
    }
    if (e.message.find("shmid " + std::to_string(host_->id())) ==
        std::string::npos) {
      fail("attach error does not name the segment: " + e.message);
    }
    if (e.code == Errc::version_mismatch) {
      const std::string want =
          "created by shmring layout v" + std::to_string(cb->version) +
          ", this is v" + std::to_string(layout::kLayoutVersion);
      if (e.message.find(want) == std::string::npos) {
        fail("version message lacks '" + want + "': " + e.message);
      }
    }
    if (!out_.mutated && !(expect_sel % 4 == 2 && e.code == Errc::wrong_kind)) {
      fail("attach_id refused an intact ring: " + e.message);
    }
    return;
  }
  if (!out_.mutated && expect_sel % 4 == 2) {
    fail("attach_id accepted the wrong kind");
  }
  out_.attached = true;
  guest_.emplace(std::move(g).value());
  attach_consumer(*guest_);
  if (!out_.mutated && !cons_) fail("consumer could not attach to an intact ring");
  attach_producer(1);
}

// ---------------------------------------------------------------- producer

void Runner::attach_producer(int who) {
  Segment* seg = who == 0 ? &*host_ : &*guest_;
  auto p = Producer::attach(*seg);
  if (p) {
    prod_[who].emplace(std::move(p).value());
    return;
  }
  const Errc c = p.error().code;
  const bool other_live = prod_[1 - who].has_value();
  if (c != Errc::role_taken && c != Errc::too_many_producers &&
      c != Errc::system) {
    fail(std::string("Producer::attach: unexpected ") + to_string(c));
  }
  if (p.error().message.empty()) fail("Producer::attach: empty message");
  if (!out_.mutated && !(c == Errc::role_taken && kind_ == Kind::spsc &&
                         other_live)) {
    fail("Producer::attach refused on an intact ring: " + p.error().message);
  }
}

void Runner::close_producer(int who) {
  if (!prod_[who]) return;
  prod_[who]->close();  // aborts an open reservation
  if (open_[who]) {
    const std::uint64_t seq = *open_[who];
    std::erase_if(ring_, [&](const Expected& e) { return e.seq == seq; });
    open_[who].reset();
  }
  prod_[who].reset();
}

void Runner::check_reservation(int who, const Reservation& r, std::size_t size) {
  const Segment& seg = prod_[who]->segment();
  const std::byte* lo = shmring::detail::ring_data(seg);
  const std::byte* hi = lo + capacity_;
  if (r.bytes.size() != size) fail("reservation has the wrong size");
  if (r.bytes.data() < lo + layout::kHeaderSize ||
      r.bytes.data() + r.bytes.size() > hi) {
    fail("reservation outside the ring");
  }
}

// mode: 0 try_reserve+commit, 1 reserve(timeout)+commit, 2 try+abort,
// 3 try, left open, 4 try+commit_deferred.
bool Runner::produce(int who, std::size_t size, std::size_t used, int mode,
                     std::uint16_t type, std::uint64_t wait_us) {
  if (!prod_[who]) return false;
  Producer& p = *prod_[who];
  // A new reservation aborts an open one.
  if (open_[who]) {
    const std::uint64_t seq = *open_[who];
    std::erase_if(ring_, [&](const Expected& e) { return e.seq == seq; });
    open_[who].reset();
  }
  trace("  produce who=%d size=%zu used=%zu mode=%d\n", who, size, used, mode);
  const Reservation r = mode == 1
      ? p.reserve(size, std::chrono::microseconds(wait_us))
      : p.try_reserve(size);
  note(r.status, "reserve");
  if (size > p.max_record_size() && r.status != Status::too_large) {
    fail("oversized reserve(" + std::to_string(size) + ") gave " +
         to_string(r.status));
  }
  if (!r) {
    if (!out_.mutated && r.status != Status::would_block &&
        r.status != Status::timed_out && r.status != Status::too_large &&
        r.status != Status::peer_dead) {
      fail(std::string("reserve on an intact ring: ") + to_string(r.status));
    }
    return false;
  }
  check_reservation(who, r, size);
  if (failed()) return false;
  const std::uint64_t seq = next_seq_++;
  for (std::size_t i = 0; i < size; ++i) {
    r.bytes[i] = static_cast<std::byte>(pattern(seq, i));
  }
  used = std::min(used, size);
  type = static_cast<std::uint16_t>(type & layout::kMaxType);
  switch (mode) {
    case 2:
      p.abort();
      return true;
    case 3:
      ring_.push_back({seq, static_cast<std::uint32_t>(size), 0, false, who});
      open_[who] = seq;
      return true;
    case 4:
      p.commit_deferred(used, type);
      break;
    default:
      p.commit(used, type);
      break;
  }
  ring_.push_back({seq, static_cast<std::uint32_t>(used), type, true, who});
  return true;
}

// ---------------------------------------------------------------- consumer

void Runner::attach_consumer(Segment& seg) {
  trace("  consumer attach: head %llu tail %llu\n",
        static_cast<unsigned long long>(shmring::detail::control(*host_)->head.load()),
        static_cast<unsigned long long>(shmring::detail::control(*host_)->tail.load()));
  auto c = Consumer::attach(seg);
  if (c) {
    cons_.emplace(std::move(c).value());
    cons_seg_ = &seg;
    return;
  }
  const Errc code = c.error().code;
  if (code != Errc::role_taken && code != Errc::system) {
    fail(std::string("Consumer::attach: unexpected ") + to_string(code));
  }
  if (!out_.mutated) fail("Consumer::attach refused: " + c.error().message);
}

void Runner::check_record(const Record& rec) {
  const std::byte* lo = shmring::detail::ring_data(*cons_seg_);
  const std::byte* hi = lo + capacity_;
  if (rec.data < lo + layout::kHeaderSize || rec.data > hi ||
      rec.size > static_cast<std::uint64_t>(hi - rec.data) ||
      rec.size > cons_->max_record_size()) {
    fail("record outside the ring (size " + std::to_string(rec.size) + ")");
    return;
  }
  if (rec.type > layout::kMaxType) fail("record type out of range");
  trace("  record @%lld size %u\n", static_cast<long long>(rec.data - lo),
        rec.size);
  // Touch every byte: ASan flags any read the bounds above missed.
  std::uint8_t sum = 0;
  for (std::uint32_t i = 0; i < rec.size; ++i) {
    sum = static_cast<std::uint8_t>(sum + static_cast<std::uint8_t>(rec.data[i]));
  }
  (void)sum;
  if (out_.mutated) return;
  if (ring_.empty()) {
    fail("delivered a record nobody wrote");
    return;
  }
  const Expected e = ring_.front();
  if (!e.committed) {
    fail("delivered a record before its commit");
    return;
  }
  if (rec.size != e.size || rec.type != e.type) {
    fail("record seq " + std::to_string(e.seq) + ": size/type " +
         std::to_string(rec.size) + "/" + std::to_string(rec.type) +
         ", expected " + std::to_string(e.size) + "/" + std::to_string(e.type));
    return;
  }
  for (std::uint32_t i = 0; i < rec.size; ++i) {
    if (static_cast<std::uint8_t>(rec.data[i]) != pattern(e.seq, i)) {
      fail("record seq " + std::to_string(e.seq) + ": payload differs at " +
           std::to_string(i));
      return;
    }
  }
  ring_.pop_front();
  peeked_.push_back(e);
  ++out_.delivered;
}

Status Runner::consume_one(Peeked p) {
  note(p.status, "peek");
  if (p.status == Status::corrupt && cons_->corrupt_offset() >= capacity_) {
    fail("corrupt_offset outside the ring");
  }
  if (p) check_record(p.record);
  return p.status;
}

void Runner::release() {
  if (!cons_) return;
  cons_->release();
  peeked_.clear();
}

void Runner::close_consumer() {
  if (!cons_) return;
  cons_->close();
  // Unreleased records come again to the next consumer.
  ring_.insert(ring_.begin(), peeked_.begin(), peeked_.end());
  peeked_.clear();
  cons_.reset();
  cons_seg_ = nullptr;
}

// ---------------------------------------------------------------- ops

void Runner::step(std::uint8_t op) {
  static const char* const kNames[] = {
      "set-field", "set-header", "set-header-at", "set-data-byte", "peek",
      "release", "peek-wait", "peek-batch", "read", "reserve-commit",
      "reserve-abort", "reserve-wait", "write", "flush", "producer-cycle",
      "consumer-cycle", "info"};
  static_assert(sizeof kNames / sizeof kNames[0] == kOpCount);
  trace("op %s\n", kNames[op % kOpCount]);
  switch (op % kOpCount) {
    case kSetField:
    case kSetHeader:
    case kSetHeaderAt:
    case kSetDataByte:
      mutate(op);
      break;
    case kPeek:
      if (cons_) (void)consume_one(cons_->try_peek());
      break;
    case kRelease:
      release();
      break;
    case kPeekWait: {
      const auto us = std::chrono::microseconds(in_.u8() % 4 * 250);
      if (cons_) (void)consume_one(cons_->peek(us));
      break;
    }
    case kPeekBatch: {
      Record recs[8];
      const std::size_t want = in_.u8() % 9;
      if (!cons_) break;
      const PeekedBatch b = cons_->try_peek_batch(std::span(recs, want));
      const Status s = b.status;
      const std::size_t n = b.records.size();
      note(s, "peek_batch");
      if (n > want || (n > 0 && b.records.data() != recs)) {
        fail("peek_batch returned records outside its output");
      }
      if (s == Status::ok && n == 0 && want > 0) fail("peek_batch ok with none");
      if (s != Status::ok && n > 0) fail("peek_batch records without ok");
      for (std::size_t i = 0; i < n && i < want; ++i) check_record(recs[i]);
      break;
    }
    case kRead: {
      if (!cons_) break;
      // read() copies and releases: model it as peek + check + release.
      Peeked p = cons_->try_peek();
      if (consume_one(p) == Status::ok) release();
      break;
    }
    case kReserveCommit: {
      const int who = in_.u8() & 1;
      const std::size_t size = in_.u16() % (capacity_ / 2 + 16);
      const std::size_t used = in_.u16() % (size + 1);
      const std::uint8_t flags = in_.u8();
      (void)produce(who, size, used, (flags & 1) ? 4 : 0,
                    static_cast<std::uint16_t>(flags >> 1), 0);
      break;
    }
    case kReserveAbort: {
      const int who = in_.u8() & 1;
      const std::size_t size = in_.u16() % (capacity_ / 2 + 16);
      (void)produce(who, size, size, (size & 1) ? 2 : 3, 0, 0);
      break;
    }
    case kReserveWait: {
      const int who = in_.u8() & 1;
      const std::size_t size = in_.u16() % (capacity_ / 2 + 16);
      const std::uint64_t us = in_.u8() % 4 * 250;
      (void)produce(who, size, size, 1, 1, us);
      break;
    }
    case kWrite: {
      const int who = in_.u8() & 1;
      const std::size_t size = in_.u16() % (capacity_ / 2 + 16);
      (void)produce(who, size, size, 0, 2, 0);
      break;
    }
    case kFlush: {
      const int who = in_.u8() & 1;
      if (prod_[who]) prod_[who]->flush();
      break;
    }
    case kProducerCycle: {
      const int who = in_.u8() & 1;
      if (who == 1 && !guest_) break;
      close_producer(who);
      attach_producer(who);
      break;
    }
    case kConsumerCycle:
      close_consumer();
      attach_consumer(*guest_);
      break;
    case kInfo: {
      const SegmentInfo i = guest_->info();
      if (i.producers.size() > layout::kMaxProducers) fail("info: too many producers");
      break;
    }
    default:
      break;
  }
}

void Runner::finish() {
  close_producer(0);
  close_producer(1);
  if (!cons_) attach_consumer(*guest_);
  if (!cons_) return;
  // Nothing writes now: the consumer must come to rest, whatever the
  // headers say (a forged chain can lead around the ring for ever). It
  // follows headers from a head at most a ring behind the tail, and no
  // record may end more than a ring past the tail: two rings' worth of
  // 8-byte records at most.
  const std::uint64_t bound = 2 * capacity_ / 8 + 2;
  Status last = Status::ok;
  std::uint64_t n = 0;
  for (; n <= bound; ++n) {
    last = consume_one(cons_->try_peek());
    if (last != Status::ok || failed()) break;
    release();
    trace("  drain: head %llu tail %llu\n",
          static_cast<unsigned long long>(shmring::detail::control(*host_)->head.load()),
          static_cast<unsigned long long>(shmring::detail::control(*host_)->tail.load()));
  }
  if (n > bound) fail("drain delivered more records than the ring holds");
  if (!out_.mutated && !failed()) {
    if (last != Status::closed) {
      fail(std::string("drained intact ring ended with ") + to_string(last));
    }
    if (!ring_.empty()) {
      fail(std::to_string(ring_.size()) + " committed records never delivered");
    }
  }
  // A blocking peek after the drain must return too (bounded wait).
  if (!failed()) note(cons_->peek(std::chrono::microseconds(200)).status, "peek");
}

FuzzResult Runner::run() {
  if (!build()) return out_;
  // Leading mutations hit the segment before anyone attaches.
  while (!in_.empty() && !failed()) {
    // Peek without consuming: a non-mutation op ends the prologue.
    Reader probe = in_;
    if (!is_mutation(probe.u8())) break;
    mutate(in_.u8());
  }
  attach_guest();
  if (!guest_ || failed()) return out_;
  int ops = 0;
  while (!in_.empty() && !failed() && ops++ < 4096) step(in_.u8());
  if (!failed()) finish();
  return out_;
}

}  // namespace

FuzzResult run_fuzz_input(std::span<const std::uint8_t> input) {
  Runner r(input);
  FuzzResult out = r.run();
  return out;
}

}  // namespace shmring::hardening
