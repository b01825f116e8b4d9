// Plumbing shared by the shmring command-line tools (shm-produce,
// shm-consume, shm-ring): the exit-code table, the addressing and ring flags
// every tool takes, opening a ring, signal handling and error reporting.
// docs/tools.md documents all of it for users; keep the two in step.
#pragma once

#include <sys/types.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ring/shmring.h"

namespace shmring::tools {

inline constexpr const char* kVersion = SHMRING_VERSION;  // ring/version.h

// The ring every tool uses when neither --key nor --path is given (or the
// SHMRING_KEY environment variable), so the demo needs no flags.
inline constexpr key_t kDefaultKey = 0x5eed0001;
inline constexpr const char* kDefaultKeyText = "0x5eed0001";

// Exit codes, the same for every tool (docs/tools.md, "Exit codes").
enum Exit : int {
  kExitOk = 0,
  kExitInternal = 1,    // unexpected system error, bug
  kExitUsage = 2,       // bad flag or flag value
  kExitNotFound = 3,    // no ring under the key; ftok path missing
  kExitPermission = 4,  // mode/owner forbids access
  kExitBadSegment = 5,  // not shmring, version, kind, size or wait mismatch
  kExitPeerDead = 6,    // consumer gone (producer) / producer died (consumer)
  kExitTooLarge = 7,    // a line or frame larger than max_record_size()
  kExitTimeout = 8,     // --timeout expired
  kExitBusy = 9,        // exists (exclusive create), role taken, no slot
  kExitCorrupt = 10,    // the ring holds values no correct peer writes
  kExitBrokenOutput = 11,  // stdout closed (EPIPE) or failed
  kExitBadInput = 12,      // truncated length frame, stdin read error
  kExitLimit = 13,         // the system cannot back the ring: memory, shmmax,
                           // shmall, shmmni
  kExitSignalBase =
      128,  // + signal number: 129 SIGHUP, 130 SIGINT, 143 SIGTERM
};

int exit_code(Errc e);
int exit_code(Status s);

// A fatal condition: the tool prints `<tool>: <message>` and exits `code`.
// Thrown only on the main thread; destructors on the way out detach from
// the ring (and remove it under --remove-on-exit).
struct Failure : std::runtime_error {
  Failure(int c, const std::string& message)
      : std::runtime_error(message), code(c) {}
  int code;
};

[[noreturn]] void fail(const Error& e);
[[noreturn]] void fail(int code, const std::string& message);
// Fails with exit_code(s): the one Status -> exit code mapping.
[[noreturn]] void fail(Status s, const std::string& message);

// ---------------------------------------------------------------- flags ---

// Which ring: --key, or --path/--proj (ftok), or the default.
struct AddressFlags {
  std::string key;
  // Every --key option bound to this struct (shm-ring binds one per
  // subcommand), to tell "given explicitly as empty" from "not given".
  std::vector<CLI::Option*> key_opts;
  std::string path;
  std::string proj = "S";
  int id = -1;  // shm-ring only: --id SHMID
};

// How to open or create it, and how long to wait.
struct RingFlags {
  AddressFlags address;
  bool create = false;
  std::string capacity = "1M";
  std::string mode = "0600";
  std::string kind;                 // empty: any on attach, spsc on create
  std::string wait;                 // empty: any on attach, futex on create
  std::uint32_t max_producers = 0;  // 0: the library's default for the kind
  std::uint32_t slot_size = 0;      // --slot-size (shm-ring create, slots)
  std::uint32_t max_consumers = 0;  // broadcast: 0 = the library's default
  std::string overrun;              // broadcast: "wait" (default), "drop-slow"
  bool hugepages = false;           // create with SHM_HUGETLB
  double timeout = -1;              // seconds; < 0: forever
  bool remove_on_exit = false;
  // Set by CLI11 when the flag was given explicitly: an existing ring must
  // then match it.
  CLI::Option* capacity_opt = nullptr;
  CLI::Option* wait_opt = nullptr;
};

// A finite number >= 0 (CLI11's NonNegativeNumber prints DBL_MAX in its
// message and lets "nan" through).
extern const CLI::Validator kNonNegative;

void add_address_flags(CLI::App& app, AddressFlags& f);
// --create --capacity --mode --kind --wait (and the address flags).
// `slots`: also accept --kind slots with --slot-size (shm-ring create only;
// shm-produce/shm-consume move records and refuse slots rings).
void add_create_flags(CLI::App& app, RingFlags& f, bool slots = false);
// --timeout --remove-on-exit.
void add_lifetime_flags(CLI::App& app, RingFlags& f);

// "1048576", "64K", "1M", "1G", "4MiB" (binary multiples). nullopt if bad.
std::optional<std::uint64_t> parse_size(const std::string& text);
// "0600" / "600" (octal).
std::optional<unsigned> parse_mode(const std::string& text);
// "S" (the character's code, like ftok(path, 'S')) or a number "0x53"/"83".
std::optional<int> parse_proj(const std::string& text);

// The key named by the flags; fails with kExitUsage / kExitNotFound.
key_t resolve_key(const AddressFlags& f);
// The RingOptions --create would use; fails with kExitUsage on bad values.
RingOptions ring_options(const RingFlags& f);
std::optional<Kind> expected_kind(const RingFlags& f);

// Attaches to the ring named by the flags (creating it under --create):
// Segment::attach_or_create. An existing ring must match --kind, and
// --capacity / --wait when given.
struct OpenedRing {
  Segment segment;
  bool created = false;
};
OpenedRing open_ring(const RingFlags& f);

Timeout timeout_of(const RingFlags& f);

// strerror(err) / the signal's description, thread-safe (the progress
// thread may be running).
std::string errno_text(int err);
std::string signal_text();  // "interrupted by Terminated"

// 0.5 -> "0.5 s", for messages.
std::string seconds_text(double seconds);
// 1048576 -> "1 MiB", 1536 -> "1.5 KiB".
std::string human_bytes(double bytes);

// Marks the ring for removal when it goes out of scope, if asked to.
class RemoveOnExit {
 public:
  RemoveOnExit(Segment& s, bool enabled) : segment_(s), enabled_(enabled) {}
  ~RemoveOnExit();
  RemoveOnExit(const RemoveOnExit&) = delete;
  RemoveOnExit& operator=(const RemoveOnExit&) = delete;

 private:
  Segment& segment_;
  bool enabled_;
};

// -------------------------------------------------------------- signals ---

// SIGINT, SIGTERM and SIGHUP get a handler installed WITHOUT SA_RESTART that
// records the signal and calls shmring::interrupt(): ring waits return
// Status::interrupted and read(2)/write(2) return EINTR. SIGPIPE is ignored
// so a closed stdout shows up as EPIPE.
void install_signal_handlers();
// 0, or the first signal received.
int caught_signal() noexcept;
// How many terminating signals arrived (a second one means "now").
int signal_count() noexcept;
// 128 + caught_signal().
int signal_exit_code() noexcept;
// Sleeps `d` or until a signal; false if a signal is pending.
bool nap(std::chrono::milliseconds d);

// ------------------------------------------------------------------ run ---

// Parses argv with CLI11 (--help/--version exit 0, usage errors exit 2 with
// CLI11's message), then runs `body`; a Failure is printed as
// "<name>: <message>" and becomes the exit code.
int run_tool(CLI::App& app, int argc, char** argv,
             const std::function<int()>& body);

// Adds --version and the common footer to a tool's App.
void set_common(CLI::App& app);

// A tool's whole main(): its App (`name`, `description`, set_common), the
// flags `add_flags` binds to an Options (which outlives the App, whose
// options point into it), then run_tool with `body`.
template <class Options>
int tool_main(int argc, char** argv, const char* name, const char* description,
              void (*add_flags)(CLI::App&, Options&),
              int (*body)(const Options&)) {
  Options o;
  CLI::App app{description, name};
  set_common(app);
  add_flags(app, o);
  return run_tool(app, argc, argv, [&] { return body(o); });
}

// The running tool's name (from its App), for messages.
const std::string& tool_name();
// Prints "<tool>: <message>" to stderr.
void print_error(const std::string& message);

}  // namespace shmring::tools
