// shm-ring: create, inspect, list and remove shmring rings. Like ipcs/ipcrm,
// but it knows what a ring is. See docs/tools.md.
#include <pwd.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include "tools/cli.h"
#include "tools/stats.h"
#include "tools/watch.h"

namespace shmring::tools {
namespace {

using nlohmann::json;

struct Options {
  RingFlags ring;
  bool json = false;
  bool exist_ok = false;
  bool force = false;
  bool stale = false;
  bool all = false;
  CLI::Option* max_producers_opt = nullptr;
  CLI::Option* max_consumers_opt = nullptr;
  // The subcommands; run() runs the one given.
  CLI::App* create = nullptr;
  CLI::App* info = nullptr;
  CLI::App* rm = nullptr;
  CLI::App* watch = nullptr;
  WatchFlags watch_flags;
};

std::string user_name(uid_t uid) {
  struct passwd pw {};
  struct passwd* found = nullptr;
  char buf[1024];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 &&
      found != nullptr) {
    return pw.pw_name;
  }
  return std::to_string(uid);
}

std::string octal(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}

// The info of a ring we attached to just for looking: our own attachment
// is not counted.
std::uint64_t others_attached(const SegmentInfo& i) {
  return i.attach_count > 0 ? i.attach_count - 1 : 0;
}

// A ring nobody ever used (no producer or consumer attached, e.g. made by
// `shm-ring create` for a session that never came) counts as left behind
// this long after its creation (docs/tools.md, "States").
constexpr std::int64_t kUnusedStaleSeconds = 3600;

bool any_live(const SegmentInfo& i) {
  return i.consumer_alive ||
         std::any_of(i.producers.begin(), i.producers.end(),
                     [](const auto& p) { return p.alive; }) ||
         std::any_of(i.cursors.begin(), i.cursors.end(),
                     [](const auto& c) { return c.alive; });
}

bool ever_used(const SegmentInfo& i) {
  return i.producers_seen > 0 || i.consumers_seen > 0;
}

// Seconds since the segment was created. shm_ctime changes only on create
// and IPC_SET; attaching to look (ls, info) moves atime/dtime, not ctime.
std::int64_t age_seconds(const SegmentInfo& i) {
  struct shmid_ds ds {};
  if (::shmctl(i.shmid, IPC_STAT, &ds) != 0) return 0;
  return static_cast<std::int64_t>(::time(nullptr)) -
         static_cast<std::int64_t>(ds.shm_ctime);
}

// Nobody is there and nobody will miss it: no live peer, creator gone, no
// process attached, nothing unread, and used at least once (or unused for
// kUnusedStaleSeconds). `rm --stale` removes exactly these.
bool is_stale(const SegmentInfo& i) {
  return !i.creator_alive && others_attached(i) == 0 && !any_live(i) &&
         i.used_bytes == 0 &&
         (ever_used(i) || age_seconds(i) >= kUnusedStaleSeconds);
}

// Holds records nobody is reading and nobody is attached to read.
bool holds_unread(const SegmentInfo& i) {
  return i.used_bytes > 0 && !any_live(i) && others_attached(i) == 0;
}

std::string state_of(const SegmentInfo& i) {
  if (i.marked_for_removal) return "removing";
  if (any_live(i)) return "active";
  if (holds_unread(i)) return "unread";
  if (is_stale(i)) return "stale";
  return "idle";
}

double fill_of(const SegmentInfo& i) {
  return i.capacity ? 100.0 * static_cast<double>(i.used_bytes) /
                          static_cast<double>(i.capacity)
                    : 0.0;
}

// "0%" only when empty, "100%" only when full; "<0.1%", "0.4%", "37%".
std::string fill_text(const SegmentInfo& i) {
  if (i.used_bytes == 0) return "0%";
  if (i.used_bytes >= i.capacity) return "100%";
  const double f = fill_of(i);
  char buf[16];
  if (f < 0.1) return "<0.1%";
  if (f < 10) {
    std::snprintf(buf, sizeof buf, "%.1f%%", std::floor(f * 10) / 10);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f%%", std::min(std::floor(f), 99.0));
  }
  return buf;
}

json info_json(const SegmentInfo& i) {
  json j;
  j["key"] = hex_key(i.key);
  j["shmid"] = i.shmid;
  j["kind"] = kind_name(i.kind);
  j["version"] = i.version;
  j["capacity"] = i.capacity;
  // slots rings: every element is slot_size bytes (no records).
  j["max_record"] = i.kind == Kind::slots ? std::uint64_t{i.slot_size}
                                          : max_record_size(i.capacity);
  if (i.kind == Kind::slots) {
    j["slot_size"] = i.slot_size;
    j["slot_count"] = i.slot_count;
  }
  j["segment_size"] = i.segment_size;
  j["wait"] = wait_name(i.wait);
  j["hugepages"] = i.hugepages;
  j["handshake"] = handshake_name(i.wake_mode);
  j["max_producers"] = i.max_producers;
  j["head"] = i.head;
  j["tail"] = i.tail;
  j["used_bytes"] = i.used_bytes;
  j["fill_percent"] = fill_of(i);
  j["creator"] = {{"pid", i.creator_pid}, {"alive", i.creator_alive}};
  j["consumer"] = i.consumer_pid != 0 ? json{{"pid", i.consumer_pid},
                                             {"alive", i.consumer_alive}}
                                      : json(nullptr);
  j["producers"] = json::array();
  for (const auto& p : i.producers) {
    j["producers"].push_back(
        {{"slot", p.slot}, {"pid", p.pid}, {"alive", p.alive}});
  }
  j["producers_seen"] = i.producers_seen;
  j["producers_died"] = i.producers_died;
  j["consumers_seen"] = i.consumers_seen;
  j["records_reclaimed"] = i.records_reclaimed;
  if (i.kind == Kind::broadcast) {
    j["max_consumers"] = i.max_consumers;
    j["overrun"] = i.overrun == Overrun::drop_slow ? "drop-slow" : "wait";
    j["consumers"] = json::array();
    for (const auto& c : i.cursors) {
      j["consumers"].push_back({{"cursor", c.slot},
                                {"pid", c.pid},
                                {"alive", c.alive},
                                {"position", c.position},
                                {"lag", c.lag},
                                {"lost", c.lost}});
    }
  }
  j["mode"] = octal(i.mode);
  j["owner_uid"] = i.owner_uid;
  j["owner"] = user_name(i.owner_uid);
  j["attachments"] = others_attached(i);
  j["marked_for_removal"] = i.marked_for_removal;
  j["semid"] = i.sem_id;
  j["semaphores_present"] = i.sem_present;
  j["state"] = state_of(i);
  j["stale"] = is_stale(i);
  return j;
}

void print_info(const SegmentInfo& i) {
  auto alive = [](bool a) { return a ? "alive" : "dead"; };
  std::printf("ring %s (shmid %d): %s\n", hex_key(i.key).c_str(), i.shmid,
              state_of(i).c_str());
  std::printf("  kind        %s (max %u producer%s)\n", kind_name(i.kind),
              i.max_producers, i.max_producers == 1 ? "" : "s");
  if (i.kind == Kind::slots) {
    std::printf("  capacity    %llu bytes (%s), %llu elements of %u bytes\n",
                static_cast<unsigned long long>(i.capacity),
                human_bytes(static_cast<double>(i.capacity)).c_str(),
                static_cast<unsigned long long>(i.slot_count), i.slot_size);
  } else {
    std::printf("  capacity    %llu bytes (%s), largest record %llu bytes\n",
                static_cast<unsigned long long>(i.capacity),
                human_bytes(static_cast<double>(i.capacity)).c_str(),
                static_cast<unsigned long long>(max_record_size(i.capacity)));
  }
  std::printf("  fill        %llu bytes (%s), head %llu, tail %llu%s\n",
              static_cast<unsigned long long>(i.used_bytes),
              fill_text(i).c_str(), static_cast<unsigned long long>(i.head),
              static_cast<unsigned long long>(i.tail),
              i.kind == Kind::slots ? " (elements)" : "");
  std::printf("  wait        %s (wake-up handshake: %s)\n", wait_name(i.wait),
              handshake_name(i.wake_mode));
  std::printf("  pages       %s\n",
              i.hugepages ? "huge (SHM_HUGETLB)" : "normal");
  std::printf("  version     %u\n", i.version);
  std::printf("  semaphores  semid %d (%s)\n", i.sem_id,
              i.sem_present ? "role liveness, ipcs -s"
                            : "MISSING: removed by hand? `shm-ring rm` it");
  std::printf("  creator     pid %d (%s)\n", i.creator_pid,
              alive(i.creator_alive));
  if (i.kind == Kind::broadcast) {
    std::printf("  consumers   %zu of max %u (overrun: %s)\n", i.cursors.size(),
                i.max_consumers,
                i.overrun == Overrun::drop_slow ? "drop-slow" : "wait");
    for (const auto& c : i.cursors) {
      std::printf(
          "  consumer    pid %d (%s), cursor %d, position %llu, lag %llu "
          "bytes%s\n",
          c.pid, alive(c.alive), c.slot,
          static_cast<unsigned long long>(c.position),
          static_cast<unsigned long long>(c.lag),
          c.lost != 0 ? (", lost " + std::to_string(c.lost) + " bytes").c_str()
                      : "");
    }
  } else if (i.consumer_pid != 0) {
    std::printf("  consumer    pid %d (%s)\n", i.consumer_pid,
                alive(i.consumer_alive));
  } else {
    std::printf("  consumer    none\n");
  }
  if (i.producers.empty()) std::printf("  producers   none\n");
  for (const auto& p : i.producers) {
    std::printf("  producer    pid %d (%s), slot %d\n", p.pid, alive(p.alive),
                p.slot);
  }
  std::printf(
      "  history     %u producers seen, %u died; %u consumers seen; "
      "%u records reclaimed\n",
      i.producers_seen, i.producers_died, i.consumers_seen,
      i.records_reclaimed);
  std::printf("  owner       %s, mode %s, %llu other attachment%s%s\n",
              user_name(i.owner_uid).c_str(), octal(i.mode).c_str(),
              static_cast<unsigned long long>(others_attached(i)),
              others_attached(i) == 1 ? "" : "s",
              i.marked_for_removal ? ", marked for removal" : "");
}

Segment attach_addressed(const Options& o) {
  if (o.ring.address.id >= 0) {
    auto s = Segment::attach_id(o.ring.address.id, expected_kind(o.ring));
    if (!s) fail(s.error());
    return std::move(s).value();
  }
  auto s = Segment::attach(resolve_key(o.ring.address), expected_kind(o.ring));
  if (!s) fail(s.error());
  return std::move(s).value();
}

int cmd_create(const Options& o) {
  if (o.max_producers_opt != nullptr && o.max_producers_opt->count() > 0 &&
      o.ring.max_producers == 0) {
    // 0 is the library's "default for the kind": never a user's request.
    fail(kExitUsage,
         "--max-producers 0: a ring needs 1..64 producer slots (1 for spsc)");
  }
  if (o.max_consumers_opt != nullptr && o.max_consumers_opt->count() > 0 &&
      (o.ring.max_consumers == 0 || o.ring.kind != "broadcast")) {
    fail(kExitUsage, "--max-consumers needs --kind broadcast and 1..16");
  }
  if (!o.ring.overrun.empty() && o.ring.kind != "broadcast") {
    fail(kExitUsage, "--overrun needs --kind broadcast");
  }
  const key_t key = resolve_key(o.ring.address);
  const RingOptions ro = ring_options(o.ring);
  std::optional<Segment> seg;
  bool created = true;
  if (o.exist_ok) {
    RingFlags f = o.ring;
    f.create = true;
    OpenedRing r = open_ring(f);
    created = r.created;
    seg.emplace(std::move(r.segment));
  } else {
    auto s = Segment::create(key, ro);
    if (!s) fail(s.error());
    seg.emplace(std::move(s).value());
  }
  const SegmentInfo i = seg->info();
  if (o.json) {
    json j = info_json(i);
    j["created"] = created;
    std::cout << j.dump() << std::endl;
  } else {
    const std::string kind =
        i.kind == Kind::slots
            ? "slots of " + std::to_string(i.slot_size) + " bytes"
            : std::string(kind_name(i.kind));
    std::printf("%s ring %s (shmid %d): %s, %s, wait %s, mode %s\n",
                created ? "created" : "exists:", hex_key(i.key).c_str(),
                i.shmid, kind.c_str(),
                human_bytes(static_cast<double>(i.capacity)).c_str(),
                wait_name(i.wait), octal(i.mode).c_str());
  }
  return kExitOk;
}

int cmd_info(const Options& o) {
  Segment seg = attach_addressed(o);
  const SegmentInfo i = seg.info();
  if (o.json) {
    std::cout << info_json(i).dump() << std::endl;
  } else {
    print_info(i);
  }
  return kExitOk;
}

struct Row {
  key_t key;
  int shmid;
  std::uint64_t size;
  std::uint64_t nattch;
  std::optional<SegmentInfo> info;  // set for shmring rings
  std::optional<std::uint64_t> unread_records;
  std::string why_not;  // else: why it is not one of ours
};

// Every segment this IPC namespace shows in /proc/sysvipc/shm, identified
// by attaching to it (Segment::attach_id validates magic, version, sizes).
// A quick look first (Segment::looks_like_ring), so that `ls` does not make
// a full, validating attach (which waits up to 2 s for a zeroed header) to
// every foreign segment.
std::vector<Row> scan() {
  std::ifstream in("/proc/sysvipc/shm");
  if (!in) fail(kExitInternal, "cannot read /proc/sysvipc/shm");
  std::string line;
  std::getline(in, line);  // header
  std::vector<Row> rows;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    long long key = 0, shmid = -1, cpid, lpid;
    unsigned perms;
    std::uint64_t size = 0, nattch = 0;
    if (!(ls >> key >> shmid >> std::oct >> perms >> std::dec >> size >> cpid >>
          lpid >> nattch)) {
      continue;
    }
    Row r{static_cast<key_t>(key),
          static_cast<int>(shmid),
          size,
          nattch,
          {},
          {},
          {}};
    if (!Segment::looks_like_ring(r.shmid, size)) {
      r.why_not = "not a shmring segment (no shmring magic)";
      rows.push_back(std::move(r));
      continue;
    }
    auto seg = Segment::attach_id(r.shmid);
    if (seg) {
      r.info = seg->info();
      r.unread_records = seg->unread_records();
    } else {
      r.why_not = seg.error().message;
      if (seg.error().code == Errc::not_found) continue;  // vanished
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

int cmd_ls(const Options& o) {
  const std::vector<Row> rows = scan();
  if (o.json) {
    json j = json::array();
    for (const Row& r : rows) {
      if (r.info) {
        j.push_back(info_json(*r.info));
      } else if (o.all) {
        j.push_back({{"key", hex_key(r.key)},
                     {"shmid", r.shmid},
                     {"segment_size", r.size},
                     {"attachments", r.nattch},
                     {"shmring", false},
                     {"why", r.why_not}});
      }
    }
    std::cout << j.dump() << std::endl;
    return kExitOk;
  }
  std::printf("%-10s %8s %-9s %9s %5s %9s %-9s %3s %-4s %-8s %s\n", "KEY",
              "SHMID", "KIND", "CAPACITY", "FILL", "PRODUCERS", "CONSUMER",
              "ATT", "MODE", "OWNER", "STATE");
  for (const Row& r : rows) {
    if (!r.info) {
      if (o.all) {
        std::printf("%-10s %8d %-9s %9s %5s %9s %-9s %3llu %-4s %-8s %s\n",
                    hex_key(r.key).c_str(), r.shmid, "-",
                    human_bytes(static_cast<double>(r.size)).c_str(), "-", "-",
                    "-", static_cast<unsigned long long>(r.nattch), "-", "-",
                    "not a ring");
      }
      continue;
    }
    const SegmentInfo& i = *r.info;
    int live = 0;
    for (const auto& p : i.producers) live += p.alive ? 1 : 0;
    char producers[32];
    std::snprintf(producers, sizeof producers, "%d/%u", live, i.max_producers);
    const std::string fill = fill_text(i);
    std::string consumer =
        i.consumer_pid == 0
            ? "-"
            : std::to_string(i.consumer_pid) + (i.consumer_alive ? "" : "?");
    if (i.kind == Kind::broadcast) {  // live cursors / max, like PRODUCERS
      int live_c = 0;
      for (const auto& c : i.cursors) live_c += c.alive ? 1 : 0;
      consumer = std::to_string(live_c) + "/" + std::to_string(i.max_consumers);
    }
    std::printf("%-10s %8d %-9s %9s %5s %9s %-9s %3llu %-4s %-8s %s\n",
                hex_key(i.key).c_str(), i.shmid, kind_name(i.kind),
                human_bytes(static_cast<double>(i.capacity)).c_str(),
                fill.c_str(), producers, consumer.c_str(),
                static_cast<unsigned long long>(others_attached(i)),
                octal(i.mode).c_str(), user_name(i.owner_uid).c_str(),
                state_of(i).c_str());
  }
  return kExitOk;
}

// Marks segment `shmid` (called `name` in messages) for removal, with its
// role semaphore set (`semid`, or the one under its key).
int remove_id(int shmid, const std::string& name, int semid = -1) {
  Segment::remove_role_semaphores(shmid, semid);
  if (::shmctl(shmid, IPC_RMID, nullptr) != 0) {
    const int err = errno;
    // shmctl's EINVAL: no segment has this id (any more).
    if (err == EINVAL || err == EIDRM)
      fail(kExitNotFound, "no segment " + name);
    fail(os_error(err, "cannot remove " + name));
  }
  return kExitOk;
}

int cmd_rm(const Options& o) {
  if (o.stale) {
    json removed = json::array();
    json kept = json::array();
    for (const Row& r : scan()) {
      if (!r.info || r.info->marked_for_removal) continue;
      const SegmentInfo& i = *r.info;
      const std::string key = hex_key(r.key);
      if (is_stale(i)) {
        remove_id(r.shmid, "ring " + key, i.sem_present ? i.sem_id : -1);
        removed.push_back(key);
        if (!o.json)
          std::printf("removed stale ring %s (shmid %d)\n", key.c_str(),
                      r.shmid);
        continue;
      }
      // Left alone but looks abandoned: say why it stays.
      if (i.creator_alive || any_live(i) || others_attached(i) != 0) continue;
      std::string why;
      if (i.used_bytes > 0) {
        why = std::to_string(i.used_bytes) + " unread bytes";
        if (r.unread_records) {
          why += " in " + std::to_string(*r.unread_records) +
                 (*r.unread_records == 1 ? " record" : " records");
        }
      } else {
        why = "never used, created " + std::to_string(age_seconds(i)) +
              " s ago (an unused ring is stale after " +
              std::to_string(kUnusedStaleSeconds) + " s)";
      }
      kept.push_back({{"key", key},
                      {"shmid", r.shmid},
                      {"unread_bytes", i.used_bytes},
                      {"why", why}});
      if (!o.json) {
        std::printf("kept %s (shmid %d): %s; `shm-ring rm --key %s` drops it\n",
                    key.c_str(), r.shmid, why.c_str(), key.c_str());
      }
    }
    if (o.json) {
      std::cout << json{{"removed", removed}, {"kept", kept}}.dump()
                << std::endl;
    }
    return kExitOk;
  }
  std::string name;
  std::uint64_t others = 0;
  int shmid = -1;
  int semid = -1;
  if (o.force) {
    // Whatever the segment is: no attach, no validation.
    if (o.ring.address.id >= 0) {
      shmid = o.ring.address.id;
      name = "shmid " + std::to_string(shmid);
    } else {
      const key_t key = resolve_key(o.ring.address);
      name = "segment " + hex_key(key);
      shmid = ::shmget(key, 0, 0);
      if (shmid < 0) {
        const int err = errno;
        if (err == ENOENT) fail(kExitNotFound, "no " + name);
        fail(os_error(err, "cannot open " + name));
      }
    }
  } else {
    Segment seg = attach_addressed(o);  // refuses what is not a ring
    const SegmentInfo i = seg.info();
    shmid = seg.id();
    semid = i.sem_id;
    others = others_attached(i);
    name = "ring " + hex_key(i.key);
  }
  remove_id(shmid, name, semid);
  if (o.json) {
    std::cout << json{{"removed", name},
                      {"shmid", shmid},
                      {"attachments", others}}
                     .dump()
              << std::endl;
  } else if (others > 0) {
    std::printf(
        "removed %s (shmid %d); it disappears when its %llu attached "
        "%s\n",
        name.c_str(), shmid, static_cast<unsigned long long>(others),
        others == 1 ? "process detaches" : "processes detach");
  } else {
    std::printf("removed %s (shmid %d)\n", name.c_str(), shmid);
  }
  return kExitOk;
}

void add_id_flag(CLI::App& sub, Options& o) {
  sub.add_option(
         "--id", o.ring.address.id,
         "The segment's shmid (as ls and ipcs -m show it) instead of a key")
      ->check(kNonNegative)
      ->excludes(sub.get_option("--key"))
      ->excludes(sub.get_option("--path"));
}

void add_flags(CLI::App& app, Options& o) {
  app.require_subcommand(1);

  auto* create = o.create = app.add_subcommand(
      "create", "Create a ring (exclusive unless --exist-ok)");
  add_create_flags(*create, o.ring, /*slots=*/true);
  o.max_producers_opt =
      create->add_option("--max-producers", o.ring.max_producers,
                         "mpsc: producer slots, 1..64 (default 64)");
  o.max_consumers_opt =
      create->add_option("--max-consumers", o.ring.max_consumers,
                         "broadcast: consumer cursors, 1..16 (default 16)");
  create
      ->add_option("--overrun", o.ring.overrun,
                   "broadcast: wait (the producer waits for the slowest "
                   "consumer, default) or drop-slow (it never waits; a "
                   "lapped consumer skips to the oldest intact record and "
                   "counts what it lost)")
      ->check(CLI::IsMember({"wait", "drop-slow"}));
  create->add_flag("--exist-ok", o.exist_ok,
                   "Succeed if a matching ring already exists");
  create->add_flag("--json", o.json, "Print the ring as JSON");

  auto* info = o.info = app.add_subcommand(
      "info", "Show a ring: kind, capacity, fill, peers, wait, version, owner");
  add_address_flags(*info, o.ring.address);
  add_id_flag(*info, o);
  info->add_option("--kind", o.ring.kind,
                   "Fail (exit 5) unless the ring is of this kind")
      ->check(CLI::IsMember({"spsc", "mpsc", "broadcast", "slots"}));
  info->add_flag("--json", o.json, "Print as JSON");

  auto* rm = o.rm =
      app.add_subcommand("rm", "Mark a ring for removal (IPC_RMID)");
  add_address_flags(*rm, o.ring.address);
  add_id_flag(*rm, o);
  rm->add_flag("--force", o.force,
               "Remove the segment even if it is not a shmring ring");
  rm->add_flag("--stale", o.stale,
               "Remove every stale ring: drained, no live peer, creator "
               "dead, nothing attached, used once (or unused for 1 h); "
               "reports rings it keeps")
      ->excludes(rm->get_option("--key"))
      ->excludes(rm->get_option("--path"))
      ->excludes(rm->get_option("--id"))
      ->excludes(rm->get_option("--force"));
  rm->add_flag("--json", o.json, "Print what was removed as JSON");

  auto* ls = app.add_subcommand("ls", "List the rings in this IPC namespace");
  ls->add_flag("--all", o.all, "Also list segments that are not shmring rings");
  ls->add_flag("--json", o.json, "Print as a JSON array");

  auto* watch = o.watch = app.add_subcommand(
      "watch",
      "Watch rings live: records/s and bytes/s in and out, fill, lag, loss, "
      "peers, wait state (read-only)");
  add_address_flags(*watch, o.ring.address);
  add_id_flag(*watch, o);
  add_watch_flags(*watch, o.watch_flags);
  watch->get_option("--all")
      ->excludes(watch->get_option("--key"))
      ->excludes(watch->get_option("--path"))
      ->excludes(watch->get_option("--id"));
}

int run(const Options& o) {
  if (*o.create) return cmd_create(o);
  if (*o.info) return cmd_info(o);
  if (*o.rm) return cmd_rm(o);
  if (*o.watch) return run_watch(o.ring.address, o.watch_flags, state_of);
  return cmd_ls(o);
}

}  // namespace
}  // namespace shmring::tools

// CLI11 throws only on a malformed App definition: a bug, let it abort.
int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape)
  using namespace shmring::tools;
  return tool_main<Options>(
      argc, argv, "shm-ring",
      "Create, inspect, list and remove shmring rings (a ring-aware "
      "ipcs/ipcrm).",
      add_flags, run);
}
