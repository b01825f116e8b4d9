#include "tests/support.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

namespace shmring::testing {

namespace {
// Every child spawn() forked (in this process), for own_segment_count().
std::vector<pid_t>& spawned_children() {
  static std::vector<pid_t> pids;
  return pids;
}
}  // namespace

// ---- Keys and leak checks.

key_t test_key(int n) {
  if (n < 0 || n > 0xff) FAIL("test_key(" << n << "): n must be 0..255");
  const auto pid = static_cast<std::uint32_t>(::getpid()) & 0xffffu;
  return static_cast<key_t>(kSuiteKeyPrefix | (pid << 8) |
                            static_cast<std::uint32_t>(n));
}

int own_segment_count() {
  std::ifstream in("/proc/sysvipc/shm");
  REQUIRE(in.good());
  std::string line;
  std::getline(in, line);  // header
  const auto block = static_cast<std::uint32_t>(test_key(0));
  const pid_t self = ::getpid();
  const auto& children = spawned_children();
  int n = 0;
  while (std::getline(in, line)) {
    // key shmid perms size cpid lpid nattch ...
    std::istringstream fields(line);
    long long key = 0, shmid = 0, size = 0;
    std::string perms;
    pid_t cpid = 0;
    if (!(fields >> key >> shmid >> perms >> size >> cpid)) continue;
    const bool ours_by_key =
        (static_cast<std::uint32_t>(key) & 0xffffff00u) == block;
    const bool ours_by_creator =
        cpid == self ||
        std::find(children.begin(), children.end(), cpid) != children.end();
    if (ours_by_key || ours_by_creator) ++n;
  }
  return n;
}

// ---- Timing.

std::chrono::nanoseconds process_cpu_time(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // comm (field 2) may hold spaces: fields are counted after the last ')'.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return std::chrono::nanoseconds(-1);
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // After comm: field 3 (state) is index 0; utime is field 14, stime 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  return std::chrono::nanoseconds((utime + stime) * 1000000000ULL /
                                  static_cast<unsigned long long>(hz));
}

// ---- Skips.

bool not_permitted(int err) { return err == EPERM; }

void privileged_skip(const std::string& why) {
  std::fprintf(stderr, "PRIVILEGED TEST SKIPPED: %s\n", why.c_str());
  std::fflush(stderr);
  const char* req = std::getenv("SHMRING_REQUIRE_PRIVILEGED");
  if (req != nullptr && std::string(req) == "1") {
    FAIL("privileged test skipped while SHMRING_REQUIRE_PRIVILEGED=1: " << why);
  }
  WARN("PRIVILEGED TEST SKIPPED: " << why);
}

void environment_skip(const std::string& why) {
  std::fprintf(stderr, "ENVIRONMENT TEST SKIPPED: %s\n", why.c_str());
  std::fflush(stderr);
  WARN("ENVIRONMENT TEST SKIPPED: " << why);
}

// ---- Child processes.

pid_t spawn(const std::function<int()>& body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) FAIL("fork: " << std::strerror(errno));
  if (pid > 0) {
    spawned_children().push_back(pid);
    return pid;
  }
  int code = 99;
  try {
    code = body();
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "child %d: exception: %s\n", ::getpid(), ex.what());
  } catch (...) {
    std::fprintf(stderr, "child %d: unknown exception\n", ::getpid());
  }
  std::fflush(nullptr);
  ::_exit(code);
}

std::string ChildStatus::describe() const {
  if (timed_out) return "timed out (killed)";
  if (exited) return "exited with code " + std::to_string(code);
  return "killed by signal " + std::to_string(signal);
}

ChildStatus wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  ChildStatus st;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) FAIL("waitpid: " << std::strerror(errno));
    if (std::chrono::steady_clock::now() > deadline) {
      st.timed_out = true;
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return st;
    }
    ::usleep(1000);
  }
  if (WIFEXITED(status)) {
    st.exited = true;
    st.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    st.signal = WTERMSIG(status);
  }
  return st;
}

ChildGuard::~ChildGuard() {
  for (const pid_t pid : pids_) {
    ::kill(pid, SIGKILL);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

pid_t ChildGuard::spawn(const std::function<int()>& body) {
  const pid_t pid = testing::spawn(body);
  pids_.push_back(pid);
  return pid;
}

void ChildGuard::forget(pid_t pid) { std::erase(pids_, pid); }

ChildStatus ChildGuard::wait(pid_t pid, std::chrono::milliseconds timeout) {
  const ChildStatus st = wait_child(pid, timeout);
  forget(pid);
  return st;
}

void ChildGuard::kill_and_reap(pid_t pid) {
  if (::kill(pid, SIGKILL) != 0) {
    FAIL("kill(" << pid << ", SIGKILL): " << std::strerror(errno));
  }
  const ChildStatus st = wait(pid);
  if (st.signal != SIGKILL) {
    FAIL("child " << pid << " was to be killed, but it " << st.describe());
  }
}

int park_until_killed() {
  for (int i = 0; i < 600; ++i) ::usleep(100000);
  return 3;
}

Beacon::Beacon() {
  if (::pipe(fds_) != 0) FAIL("pipe: " << std::strerror(errno));
}

Beacon::~Beacon() {
  ::close(fds_[0]);
  ::close(fds_[1]);
}

void Beacon::signal() {
  const char byte = 1;
  while (::write(fds_[1], &byte, 1) < 0 && errno == EINTR) {
  }
}

bool Beacon::wait(std::chrono::milliseconds timeout) {
  struct pollfd pfd = {fds_[0], POLLIN, 0};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const long long left_ms = std::max<long long>(0, left.count());
    const int r = ::poll(&pfd, 1, static_cast<int>(left_ms));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char byte;
    const ssize_t n = ::read(fds_[0], &byte, 1);
    if (n == 1) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

// ---- Rings.

ScopedRing::ScopedRing(RingOptions options) {
  auto s = Segment::create_private(options);
  if (!s) FAIL("create_private: " << s.error().message);
  segment_.emplace(std::move(s).value());
}

ScopedRing::~ScopedRing() {
  if (segment_) (void)segment_->remove();
}

Segment ScopedRing::attach_again() const {
  auto s = Segment::attach_id(segment_->id());
  if (!s) FAIL("attach_id: " << s.error().message);
  return std::move(s).value();
}

Producer attach_producer(Segment& seg, ProducerOptions options) {
  auto p = Producer::attach(seg, options);
  if (!p) FAIL("Producer::attach: " << p.error().message);
  return std::move(p).value();
}

Subscriber attach_subscriber(Segment& seg) {
  auto s = Subscriber::attach(seg);
  if (!s) FAIL("Subscriber::attach: " << s.error().message);
  return std::move(s).value();
}

Consumer attach_consumer(Segment& seg) {
  auto c = Consumer::attach(seg);
  if (!c) FAIL("Consumer::attach: " << c.error().message);
  return std::move(c).value();
}

pid_t spawn_producer(ChildGuard& children, Segment& seg,
                     std::function<int(Producer&)> body) {
  return children.spawn([&seg, body = std::move(body)] {
    auto p = Producer::attach(seg);
    if (!p) {
      std::fprintf(stderr, "child %d: Producer::attach: %s\n", ::getpid(),
                   p.error().message.c_str());
      return 1;
    }
    return body(*p);
  });
}

void set_positions(Segment& segment, std::uint64_t pos) {
  auto* cb = shmring::detail::control(segment);
  // relaxed: no peer is attached; whoever attaches next is this thread
  // (program order) or a child forked after this (fork orders it).
  cb->head.store(pos, std::memory_order_relaxed);
  cb->release_to.store(pos, std::memory_order_relaxed);
  cb->tail.store(pos, std::memory_order_relaxed);
}

const char* to_string(Handshake h) {
  switch (h) {
    case Handshake::membarrier:
      return "membarrier";
    case Handshake::fallback:
      return "fallback";
    case Handshake::child_fallback:
      return "child without membarrier";
    case Handshake::parent_fallback:
      return "parent without membarrier";
  }
  return "?";
}

bool child_lacks_membarrier(Handshake h) {
  return h == Handshake::fallback || h == Handshake::child_fallback;
}

bool parent_lacks_membarrier(Handshake h) {
  return h == Handshake::fallback || h == Handshake::parent_fallback;
}

layout::WakeMode settled_mode(Handshake h) {
  // A machine without membarrier runs every ring in fallback mode.
  return h == Handshake::membarrier && detail::process_has_membarrier()
             ? layout::WakeMode::membarrier
             : layout::WakeMode::fallback;
}

// ---- Payloads.

namespace {

// fill_payload's hash: one 64-bit state per 8 bytes.
std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// fill_words' hash: word i of the pattern for `seq`.
std::uint64_t word_at(std::uint64_t seq, std::size_t i) {
  std::uint64_t x = seq * 0x100000001b3ULL + i + 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

void fill_payload(std::span<std::byte> out, std::uint32_t producer,
                  std::uint64_t seq) {
  std::uint64_t state = mix((std::uint64_t{producer} << 48) ^ seq);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i % 8 == 0) state = mix(state + i);
    out[i] = static_cast<std::byte>(state >> ((i % 8) * 8));
  }
}

bool check_payload(std::span<const std::byte> in, std::uint32_t producer,
                   std::uint64_t seq) {
  std::uint64_t state = mix((std::uint64_t{producer} << 48) ^ seq);
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (i % 8 == 0) state = mix(state + i);
    if (in[i] != static_cast<std::byte>(state >> ((i % 8) * 8))) return false;
  }
  return true;
}

void fill_words(std::span<std::byte> out, std::uint64_t seq) {
  std::size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    const std::uint64_t w = word_at(seq, i);
    std::memcpy(out.data() + i, &w, 8);
  }
  if (i < out.size()) {
    const std::uint64_t w = word_at(seq, i);
    std::memcpy(out.data() + i, &w, out.size() - i);
  }
}

bool check_words(std::span<const std::byte> in, std::uint64_t seq) {
  std::size_t i = 0;
  for (; i + 8 <= in.size(); i += 8) {
    const std::uint64_t w = word_at(seq, i);
    if (std::memcmp(in.data() + i, &w, 8) != 0) return false;
  }
  if (i < in.size()) {
    const std::uint64_t w = word_at(seq, i);
    if (std::memcmp(in.data() + i, &w, in.size() - i) != 0) return false;
  }
  return true;
}

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void fill_seq_record(std::span<std::byte> b, std::uint64_t seq) {
  if (b.size() >= 8) {
    std::memcpy(b.data(), &seq, 8);
    fill_words(b.subspan(8), seq);
  } else {
    fill_words(b, seq);
  }
}

bool check_seq_record(std::span<const std::byte> b, std::uint64_t seq) {
  if (b.size() >= 8) {
    return seq_stamp(b) == seq && check_words(b.subspan(8), seq);
  }
  return check_words(b, seq);
}

std::uint64_t seq_stamp(std::span<const std::byte> b) {
  std::uint64_t s = ~0ULL;
  if (b.size() >= 8) std::memcpy(&s, b.data(), 8);
  return s;
}

std::span<const std::byte> as_bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

std::string next_record(Consumer& c, Timeout t) {
  Peeked p = t == std::chrono::milliseconds(0) ? c.try_peek() : c.peek(t);
  if (!p) return std::string("<") + to_string(p.status) + ">";
  std::string s = as_string(p.record.bytes());
  c.release();
  return s;
}

std::string next_record(Subscriber& c, Timeout t) {
  Peeked p = t == std::chrono::milliseconds(0) ? c.try_peek() : c.peek(t);
  if (!p) return std::string("<") + to_string(p.status) + ">";
  std::string s = as_string(p.record.bytes());
  CHECK(c.intact());
  c.release();
  return s;
}

std::string as_string(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

}  // namespace shmring::testing
