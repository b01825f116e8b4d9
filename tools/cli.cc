#include "tools/cli.h"

#include <signal.h>
#include <string.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace shmring::tools {
namespace {

std::string g_tool = "shm";

// Written by the signal handler, read by the main loop. Lock-free atomics
// are async-signal-safe; relaxed is enough because no data is published
// through them (the ring's own interrupt flag does the waking).
std::atomic<int> g_signal{0};
std::atomic<int> g_signal_count{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_signal(int sig) {
  int none = 0;
  g_signal.compare_exchange_strong(none, sig, std::memory_order_relaxed);
  g_signal_count.fetch_add(1, std::memory_order_relaxed);
  shmring::interrupt();
}

std::string lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

int exit_code(Errc e) {
  switch (e) {
    case Errc::not_found:
    case Errc::removed:
      return kExitNotFound;
    case Errc::exists:
    case Errc::role_taken:
    case Errc::too_many_producers:
      return kExitBusy;
    case Errc::permission_denied:
      return kExitPermission;
    case Errc::invalid_argument:
      return kExitUsage;
    case Errc::not_shmring:
    case Errc::version_mismatch:
    case Errc::wrong_kind:
    case Errc::size_mismatch:
    case Errc::not_ready:
      return kExitBadSegment;
    case Errc::limit:
      return kExitLimit;
    case Errc::system:
      return kExitInternal;
  }
  return kExitInternal;
}

int exit_code(Status s) {
  switch (s) {
    case Status::ok:
    case Status::closed:
      return kExitOk;
    case Status::timed_out:
      return kExitTimeout;
    case Status::too_large:
      return kExitTooLarge;
    case Status::peer_dead:
      return kExitPeerDead;
    case Status::interrupted:
      return signal_exit_code();
    case Status::corrupt:
      return kExitCorrupt;
    case Status::removed:
      return kExitNotFound;
    case Status::would_block:
    case Status::overrun:  // shm-consume counts it and goes on
      return kExitInternal;
  }
  return kExitInternal;
}

void fail(const Error& e) { throw Failure(exit_code(e.code), e.message); }
void fail(int code, const std::string& message) {
  throw Failure(code, message);
}
void fail(Status s, const std::string& message) {
  throw Failure(exit_code(s), message);
}

// ---------------------------------------------------------------- flags ---

const CLI::Validator kNonNegative(
    [](std::string& s) -> std::string {
      char* end = nullptr;
      errno = 0;
      const double v = std::strtod(s.c_str(), &end);
      if (s.empty() || *end != '\0' || errno != 0 || !std::isfinite(v) ||
          v < 0) {
        return "Value " + s + " is not a number >= 0";
      }
      return {};
    },
    "NUMBER>=0");

void add_address_flags(CLI::App& app, AddressFlags& f) {
  auto* key = app.add_option(
      "-k,--key", f.key,
      std::string("Ring key: hex 0x5eed or decimal. Default: $SHMRING_KEY, "
                  "else ") +
          kDefaultKeyText);
  f.key_opts.push_back(key);
  auto* path = app.add_option(
      "--path", f.path,
      "Derive the key with ftok(PATH, PROJ) from an existing file instead");
  path->excludes(key);
  app.add_option("--proj", f.proj,
                 "ftok project id: one character (its code, like 'S') or a "
                 "number such as 0x53")
      ->capture_default_str()
      ->needs(path);
}

void add_create_flags(CLI::App& app, RingFlags& f, bool slots) {
  add_address_flags(app, f.address);
  app.add_flag("-c,--create", f.create,
               "Create the ring if it does not exist (else attach to it)");
  f.capacity_opt = app.add_option(
      "--capacity", f.capacity,
      "Data bytes when creating: a power of two, suffixes K/M/G (default "
      "1M); an existing ring must match when given");
  app.add_option("--mode", f.mode,
                 "Permission bits when creating, octal (default 0600)");
  if (slots) {
    app.add_option("--kind", f.kind,
                   "spsc (one producer), mpsc (many), broadcast (one "
                   "producer, every consumer gets every record) or slots "
                   "(fixed-size elements for QueueWriter/QueueReader<T>, "
                   "needs --slot-size). Default: spsc")
        ->check(CLI::IsMember({"spsc", "mpsc", "broadcast", "slots"}));
    app.add_option("--slot-size", f.slot_size,
                   "slots: element size in bytes, 1 .. capacity/2 (sizeof "
                   "the T of Queue<T>)")
        ->check(CLI::PositiveNumber);
  } else {
    app.add_option("--kind", f.kind,
                   "spsc (one producer), mpsc (many) or broadcast (one "
                   "producer, every consumer gets every record). On attach: "
                   "the ring must be of this kind. Default: any; spsc when "
                   "creating")
        ->check(CLI::IsMember({"spsc", "mpsc", "broadcast"}));
  }
  f.wait_opt = app.add_option("--wait", f.wait,
                              "How sleepers wake when creating: futex "
                              "(default), semaphore or spin; an existing ring "
                              "must match when given")
                   ->check(CLI::IsMember({"futex", "semaphore", "spin"}));
  app.add_flag("--hugepages", f.hugepages,
               "When creating: back the ring with huge pages (SHM_HUGETLB); "
               "needs free huge pages (/proc/sys/vm/nr_hugepages), else "
               "exit 13");
}

void add_lifetime_flags(CLI::App& app, RingFlags& f) {
  app.add_option("-t,--timeout", f.timeout,
                 "Give up (exit 8) after waiting this many seconds for data, "
                 "space or a peer. Default: wait forever")
      ->check(kNonNegative);
  app.add_flag("--remove-on-exit", f.remove_on_exit,
               "Mark the ring for removal (IPC_RMID) when this tool exits; it "
               "disappears once every process has detached. Default: keep it");
}

std::optional<std::uint64_t> parse_size(const std::string& text) {
  if (text.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end == text.c_str() || !(v >= 0) || text[0] == '-') {
    return std::nullopt;
  }
  const std::string suffix = lower(end);
  double mult = 1;
  if (suffix.empty() || suffix == "b") {
    mult = 1;
  } else if (suffix == "k" || suffix == "kb" || suffix == "kib") {
    mult = 1024.0;
  } else if (suffix == "m" || suffix == "mb" || suffix == "mib") {
    mult = 1024.0 * 1024;
  } else if (suffix == "g" || suffix == "gb" || suffix == "gib") {
    mult = 1024.0 * 1024 * 1024;
  } else if (suffix == "t" || suffix == "tb" || suffix == "tib") {
    mult = 1024.0 * 1024 * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  const double bytes = v * mult;
  if (bytes > 9.0e18 || bytes != std::floor(bytes)) return std::nullopt;
  return static_cast<std::uint64_t>(bytes);
}

std::optional<unsigned> parse_mode(const std::string& text) {
  if (text.empty() || text.size() > 4) return std::nullopt;
  unsigned v = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return std::nullopt;
    v = v * 8 + static_cast<unsigned>(c - '0');
  }
  return v;
}

std::optional<int> parse_proj(const std::string& text) {
  if (text.size() == 1) return static_cast<unsigned char>(text[0]);
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 0);
  if (text.empty() || errno != 0 || *end != '\0' || v < 1 || v > 255) {
    return std::nullopt;
  }
  return static_cast<int>(v);
}

key_t resolve_key(const AddressFlags& f) {
  if (!f.path.empty()) {
    const auto proj = parse_proj(f.proj);
    if (!proj) {
      fail(kExitUsage,
           "--proj '" + f.proj + "' must be one character or a number 1..255");
    }
    auto k = key_from_path(f.path, *proj);
    if (!k) fail(k.error());
    return *k;
  }
  std::string text = f.key;
  const bool key_given =
      std::any_of(f.key_opts.begin(), f.key_opts.end(),
                  [](const CLI::Option* o) { return o->count() > 0; });
  if (text.empty() && key_given) {
    // --key "$UNSET" must not quietly mean the default ring.
    fail(kExitUsage, "--key is empty");
  }
  bool from_env = false;
  if (text.empty()) {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): no thread runs yet.
    const char* env = std::getenv("SHMRING_KEY");
    from_env = env != nullptr && *env != '\0';
    text = from_env ? env : kDefaultKeyText;
  }
  auto k = parse_key(text);
  if (!k) {
    // Name where a key nobody typed on this command line came from.
    fail(kExitUsage, from_env ? "$SHMRING_KEY (no --key or --path given): " +
                                    k.error().message
                              : k.error().message);
  }
  return *k;
}

std::optional<Kind> expected_kind(const RingFlags& f) {
  if (f.kind == "spsc") return Kind::spsc;
  if (f.kind == "mpsc") return Kind::mpsc;
  if (f.kind == "slots") return Kind::slots;
  if (f.kind == "broadcast") return Kind::broadcast;
  return std::nullopt;
}

RingOptions ring_options(const RingFlags& f) {
  RingOptions o;
  o.kind = expected_kind(f).value_or(Kind::spsc);
  const auto cap = parse_size(f.capacity);
  if (!cap) {
    fail(kExitUsage, "--capacity '" + f.capacity +
                         "' is not a size (e.g. 4096, 64K, 1M, 1G)");
  }
  o.capacity = *cap;
  const auto mode = parse_mode(f.mode);
  if (!mode) {
    fail(kExitUsage,
         "--mode '" + f.mode + "' is not octal permission bits (e.g. 0600)");
  }
  o.mode = *mode;
  if (f.wait == "semaphore") o.wait = WaitStrategy::semaphore;
  if (f.wait == "spin") o.wait = WaitStrategy::spin;
  o.max_producers = f.max_producers;
  o.slot_size = f.slot_size;
  o.max_consumers = f.max_consumers;
  if (f.overrun == "drop-slow") o.overrun = Overrun::drop_slow;
  o.hugepages = f.hugepages;
  if (auto v = validate(o); !v) fail(kExitUsage, v.error().message);
  return o;
}

Timeout timeout_of(const RingFlags& f) {
  if (f.timeout < 0) return kForever;
  return std::chrono::duration_cast<Timeout>(
      std::chrono::duration<double>(f.timeout));
}

OpenedRing open_ring(const RingFlags& f) {
  const key_t key = resolve_key(f.address);
  AttachOrCreate how;
  how.options = ring_options(f);  // usage errors first
  how.create = f.create;
  how.expect_kind = expected_kind(f);
  if (f.capacity_opt != nullptr && f.capacity_opt->count() > 0) {
    how.expect_capacity = how.options.capacity;
  }
  if (f.wait_opt != nullptr && f.wait_opt->count() > 0) {
    how.expect_wait = how.options.wait;
  }
  if (f.slot_size != 0) how.expect_slot_size = f.slot_size;
  bool created = false;
  auto seg = Segment::attach_or_create(key, how, &created);
  if (!seg) fail(seg.error());
  return {std::move(seg).value(), created};
}

std::string errno_text(int err) {
  char buf[256];
  // GNU strerror_r: returns a pointer to the message (maybe not buf).
  return ::strerror_r(err, buf, sizeof buf);
}

std::string signal_text() {
  const int s = caught_signal();
  const char* d = s != 0 ? ::sigdescr_np(s) : nullptr;  // thread-safe
  return std::string("interrupted by ") + (d != nullptr ? d : "a signal");
}

std::string seconds_text(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", seconds);
  return buf;
}

std::string human_bytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0 || bytes == std::floor(bytes)) {
    std::snprintf(buf, sizeof buf, "%.0f %s", bytes, kUnits[u]);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", bytes, kUnits[u]);
  }
  return buf;
}

RemoveOnExit::~RemoveOnExit() {
  if (!enabled_) return;
  auto r = segment_.remove();
  if (!r) print_error("--remove-on-exit: " + r.error().message);
}

// -------------------------------------------------------------- signals ---

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  // No SA_RESTART: a blocked read(2)/write(2)/futex wait must return EINTR
  // so the tool notices the signal at once.
  sa.sa_flags = 0;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT);
  sigaddset(&sa.sa_mask, SIGTERM);
  sigaddset(&sa.sa_mask, SIGHUP);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  ::sigaction(SIGPIPE, &ign, nullptr);
}

int caught_signal() noexcept {
  return g_signal.load(std::memory_order_relaxed);
}

int signal_count() noexcept {
  return g_signal_count.load(std::memory_order_relaxed);
}

int signal_exit_code() noexcept {
  const int s = caught_signal();
  return kExitSignalBase + (s != 0 ? s : SIGINT);
}

bool nap(std::chrono::milliseconds d) {
  if (caught_signal() != 0) return false;
  struct timespec ts {};
  ts.tv_sec = static_cast<time_t>(d.count() / 1000);
  ts.tv_nsec = static_cast<long>((d.count() % 1000) * 1000000);
  ::nanosleep(&ts, nullptr);  // EINTR on a signal: the check below sees it
  return caught_signal() == 0;
}

// ------------------------------------------------------------------ run ---

const std::string& tool_name() { return g_tool; }

void print_error(const std::string& message) {
  std::cerr << g_tool << ": " << message << std::endl;
}

void set_common(CLI::App& app) {
  app.set_version_flag("--version", app.get_name() + " (shmring) " + kVersion +
                                        ", ring layout v" +
                                        std::to_string(layout_version()));
  app.footer(
      "Exit codes: 0 ok, 1 internal, 2 usage, 3 not found, 4 permission, "
      "5 bad segment, 6 peer died, 7 record too large, 8 timeout, 9 busy/"
      "exists, 10 corrupt, 11 broken output, 12 bad input, 13 resource "
      "limit, 128+N signal N "
      "(130 SIGINT, 143 SIGTERM). See docs/tools.md.");
}

int run_tool(CLI::App& app, int argc, char** argv,
             const std::function<int()>& body) {
  g_tool = app.get_name();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    print_error(std::string(e.what()) + " (see --help)");
    return kExitUsage;
  }
  try {
    return body();
  } catch (const Failure& f) {
    print_error(f.what());
    return f.code;
  } catch (const std::exception& e) {
    print_error(std::string("internal error: ") + e.what());
    return kExitInternal;
  }
}

}  // namespace shmring::tools
