// shm-ring watch: rates, fill, lag, loss, peers and wait state of rings,
// live. Everything comes from read-only attachments (Segment::
// attach_read_only) through the public introspection calls: info() once
// per report, counters() and walk_records() every sample.
//
// Counting records without a per-record counter: the watcher keeps a
// frontier, a record boundary up to which it has counted every record
// (cumulative, since the watch began). Each sample it walks the headers
// from the frontier to the tail (new records: "in"), and from each reader's
// released position to the frontier (records not yet released: the reader's
// cumulative count is the frontier's minus those: "out"). A walk counts
// only if no reader released its start before it ended (walk_records'
// `intact`), so a counted header is never one rewritten under the walk.
// When a reader overtook the frontier between samples (more than the
// unread window passed unseen, e.g. on MPSC whose consumer zeroes what it
// releases, or the ring moved faster than the sampling), the frontier jumps
// to that reader, and the records skipped are estimated (records_exact:
// false in the report): from a walk over their released headers when it
// lands exactly on the reader (they are usually still there, but a
// producer may be rewriting them, so it is not proof), else from the mean
// record walked so far. docs/tools.md lists what is exact.
#include "tools/watch.h"

#include <sys/shm.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace shmring::tools {
namespace {

using nlohmann::json;

// Samples per report: at least one every kSamplePeriod (a window of
// capacity/2 bytes at 1 GB/s lasts 0.5 ms for a 1 MiB ring: beyond that,
// the estimate), bounded work per walk.
constexpr double kSamplePeriod = 0.005;
constexpr std::uint64_t kMaxSteps = 1 << 20;  // headers per walk
constexpr int kWalkTries = 8;      // a reader released the start: walk again
constexpr int kInsaneSamples = 3;  // consecutive impossible positions

double now_seconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A cumulative count since the watch began (may start negative: the
// frontier's count is 0 at the start), and when it was last brought up to
// date.
struct Count {
  std::int64_t records = 0;
  std::int64_t payload = 0;
  double at = 0;
};

// What everything walked so far looked like: bytes of ring positions
// (headers, padding and slack included), records and payload bytes.
struct Mean {
  std::uint64_t bytes = 0, records = 0, payload = 0;
  void add(std::uint64_t b, std::uint64_t r, std::uint64_t p) {
    bytes += b;
    records += r;
    payload += p;
  }
  bool known() const { return bytes > 0; }
  // Records and payload in `b` bytes of positions, at the mean so far.
  std::int64_t records_in(std::uint64_t b) const {
    return known() ? std::llround(static_cast<double>(b) *
                                  static_cast<double>(records) /
                                  static_cast<double>(bytes))
                   : 0;
  }
  std::int64_t payload_in(std::uint64_t b) const {
    return known() ? std::llround(static_cast<double>(b) *
                                  static_cast<double>(payload) /
                                  static_cast<double>(bytes))
                   : static_cast<std::int64_t>(b);
  }
};

// True if `pos` is ahead of `from` (modulo 2^64) by at most `limit`.
bool ahead(std::uint64_t from, std::uint64_t pos, std::uint64_t limit) {
  return pos != from && pos - from <= limit;
}

// One reading side: the consumer of an spsc/mpsc/slots ring, or one
// broadcast cursor (one registration of it: a new generation is a new
// side).
struct Side {
  Count now;           // cumulative, as of now.at
  Count rep;           // at the last report
  bool exact = true;   // nothing estimated since the last report
  bool known = false;  // now is set
  std::uint64_t position = 0;
  // Broadcast cursors.
  int slot = -1;
  pid_t pid = 0;
  std::uint32_t generation = 0;
  std::uint64_t lost = 0, lost_rep = 0;  // payload bytes lost (drop-slow)
  bool seen = false;                     // registered at the last sample
};

struct Watched {
  std::optional<Segment> seg;
  key_t key = 0;
  int shmid = -1;
  std::string name;
  bool corrupt = false;
  std::string why;  // corrupt, or could not be attached
  bool attached = false;

  // The producers' side.
  bool init = false;
  std::uint64_t frontier = 0;
  Count in, in_rep;
  bool in_exact = true;
  Mean mean;
  std::uint64_t tail = 0, tail_rep = 0;
  double tail_at = 0, tail_rep_at = 0;
  // Drop-slow: the producer's published cumulative counts.
  bool pub = false, pub_rep_ok = false;
  Count pub_now, pub_rep;
  // Readers: [0] the consumer, or broadcast cursors by slot.
  Side consumer;
  std::uint64_t head = 0;
  std::map<int, Side> cursors;
  int insane = 0;
  // Wait state: samples since the last report, how many saw a registered
  // sleeper, and the last one.
  long samples = 0, consumer_waits = 0, producer_waits = 0;
  bool consumer_waiting = false, producer_waiting = false;
};

// Records and payload in [from, to), which a reader released before they
// were walked: a walk over the released headers if it lands exactly on `to`
// (they are usually still there, but a producer may have rewritten them
// under the walk, so this is an estimate), else the mean record so far.
std::pair<std::int64_t, std::int64_t> estimate(const Watched& w,
                                               std::uint64_t from,
                                               std::uint64_t to) {
  const RecordWalk r = w.seg->walk_records(from, to, kMaxSteps);
  if (r.reached_to) {
    return {static_cast<std::int64_t>(r.records),
            static_cast<std::int64_t>(r.payload)};
  }
  return {w.mean.records_in(to - from), w.mean.payload_in(to - from)};
}

void mark_corrupt(Watched& w, const std::string& why) {
  if (w.corrupt) return;
  w.corrupt = true;
  w.why = "ring " + w.name + " is corrupt: " + why;
}

// The reader at `pos`: its cumulative count from a walk to the frontier.
void count_reader(Watched& w, Side& side, std::uint64_t pos,
                  const std::function<std::optional<std::uint64_t>()>& reread,
                  double t) {
  const Segment& seg = *w.seg;
  for (int i = 0; i < kWalkTries; ++i) {
    // Ahead by any distance (modulo 2^64: less than half of it).
    if (ahead(w.frontier, pos, std::uint64_t{1} << 63)) {
      // Past the frontier: it released records never walked (estimated).
      const auto [recs, pay] = estimate(w, w.frontier, pos);
      side.now = {w.in.records + recs, w.in.payload + pay, t};
      side.exact = false;
      side.known = true;
      side.position = pos;
      return;
    }
    const RecordWalk r = seg.walk_records(pos, w.frontier, kMaxSteps);
    if (r.corrupt) {
      mark_corrupt(w, "a record header between positions " +
                          std::to_string(pos) + " and " +
                          std::to_string(w.frontier) + " no producer writes");
      return;
    }
    if (r.intact) {
      std::int64_t recs = static_cast<std::int64_t>(r.records);
      std::int64_t pay = static_cast<std::int64_t>(r.payload);
      if (!r.reached_to) {  // out of steps: estimate the rest
        recs += w.mean.records_in(w.frontier - r.end);
        pay += w.mean.payload_in(w.frontier - r.end);
        side.exact = false;
      }
      side.now = {w.in.records - recs, w.in.payload - pay, t};
      side.known = true;
      side.position = pos;
      return;
    }
    const auto again = reread();
    if (!again) return;  // gone
    pos = *again;
  }
}

void sample(Watched& w) {
  if (w.corrupt || !w.seg) return;
  const Segment& seg = *w.seg;
  const double t = now_seconds();
  const RingCounters c = seg.counters();
  if (!c.sane) {
    if (++w.insane >= kInsaneSamples) {
      mark_corrupt(w, "positions no correct peer writes (head " +
                          std::to_string(c.head) + ", tail " +
                          std::to_string(c.tail) + ", capacity " +
                          std::to_string(seg.capacity()) + ")");
    }
    return;
  }
  w.insane = 0;
  ++w.samples;
  w.consumer_waiting = c.consumer_waiting;
  w.producer_waiting = c.producer_waiting;
  w.consumer_waits += c.consumer_waiting ? 1 : 0;
  w.producer_waits += c.producer_waiting ? 1 : 0;
  const bool first = !w.init;
  w.tail = c.tail;
  w.tail_at = t;
  w.head = c.head;
  if (first) {
    w.init = true;
    w.tail_rep = c.tail;
    w.tail_rep_at = t;
  }
  if (seg.kind() == Kind::slots) {
    // Positions count elements: records are exact, no walk.
    const auto sz = static_cast<std::int64_t>(seg.slot_size());
    if (first) w.frontier = c.tail;
    const auto n = static_cast<std::int64_t>(c.tail - w.frontier);
    w.in = {n, n * sz, t};
    const auto m = static_cast<std::int64_t>(c.head - w.frontier);
    w.consumer.now = {m, m * sz, t};
    w.consumer.known = true;
    w.consumer.position = c.head;
    if (first) {
      w.in_rep = w.in;
      w.consumer.rep = w.consumer.now;
    }
    return;
  }
  const std::uint64_t cap = seg.capacity();
  const bool broadcast = seg.kind() == Kind::broadcast;
  if (c.published) {
    // Drop-slow: the producer's cumulative counts at its published
    // position, plus a walk from there (intact while the producer has not
    // announced an overwrite of it): exact at any speed.
    const RecordWalk r =
        seg.walk_records(c.published_pos, std::nullopt, kMaxSteps);
    if (r.intact) {
      w.pub_now = {static_cast<std::int64_t>(c.published_records + r.records),
                   static_cast<std::int64_t>(c.published_payload + r.payload),
                   t};
      if (!w.pub) w.pub_rep = w.pub_now;
      w.pub = true;
    }
  }
  // Readers' released positions: candidates for a frontier overtaken.
  std::vector<std::uint64_t> readers;
  if (!broadcast) readers.push_back(c.head);
  for (const auto& cur : c.cursors) readers.push_back(cur.position);
  if (c.published) readers.push_back(c.published_pos);

  if (first) {
    // Nothing before the tail is counted: the frontier starts there.
    w.frontier = c.tail;
    w.in = {0, 0, t};
    w.in_rep = w.in;
  } else {
    // In: from the frontier to the tail.
    const RecordWalk r = seg.walk_records(w.frontier, std::nullopt, kMaxSteps);
    if (r.corrupt) {
      mark_corrupt(w, "a record header after position " +
                          std::to_string(w.frontier) + " no producer writes");
      return;
    }
    if (r.intact) {
      w.in.records += static_cast<std::int64_t>(r.records);
      w.in.payload += static_cast<std::int64_t>(r.payload);
      w.in.at = t;
      w.mean.add(r.end - w.frontier, r.records, r.payload);
      w.frontier = r.end;
    } else {
      // A reader passed the frontier: skip to the nearest reader ahead of
      // it whose walk is intact; the bytes between are estimated.
      std::sort(readers.begin(), readers.end(),
                [&](std::uint64_t a, std::uint64_t b) {
                  return a - w.frontier < b - w.frontier;
                });
      for (const std::uint64_t p : readers) {
        if (!ahead(w.frontier, p, c.tail - w.frontier) || c.tail - p > cap) {
          continue;
        }
        const RecordWalk s = seg.walk_records(p, std::nullopt, kMaxSteps);
        if (!s.intact) continue;
        const auto [recs, pay] = estimate(w, w.frontier, p);
        w.in.records += recs + static_cast<std::int64_t>(s.records);
        w.in.payload += pay + static_cast<std::int64_t>(s.payload);
        w.in.at = t;
        w.in_exact = false;
        w.mean.add(s.end - p, s.records, s.payload);
        w.frontier = s.end;
        break;
      }
    }
  }
  // Out: each reader's count, from a walk to the frontier.
  if (!broadcast) {
    count_reader(
        w, w.consumer, c.head,
        [&]() -> std::optional<std::uint64_t> { return seg.counters().head; },
        t);
    if (first) w.consumer.rep = w.consumer.now;
    return;
  }
  for (auto& [slot, side] : w.cursors) side.seen = false;
  for (const auto& cur : c.cursors) {
    auto it = w.cursors.find(cur.slot);
    if (it != w.cursors.end() && (it->second.generation != cur.generation ||
                                  it->second.pid != cur.pid)) {
      w.cursors.erase(it);  // a new registration: a new side
      it = w.cursors.end();
    }
    const bool fresh = it == w.cursors.end();
    Side& side = w.cursors[cur.slot];
    side.seen = true;
    side.slot = cur.slot;
    side.pid = cur.pid;
    side.generation = cur.generation;
    side.lost = cur.lost;
    if (fresh) side.lost_rep = cur.lost;
    const int slot = cur.slot;
    count_reader(
        w, side, cur.position,
        [&]() -> std::optional<std::uint64_t> {
          for (const auto& again : seg.counters().cursors) {
            if (again.slot == slot && again.generation == side.generation)
              return again.position;
          }
          return std::nullopt;
        },
        t);
    if (fresh) {
      side.rep = side.now;
      side.exact = true;
    }
  }
  std::erase_if(w.cursors, [](const auto& e) { return !e.second.seen; });
}

std::optional<double> per_second(std::int64_t n, double dt) {
  if (dt <= 0) return std::nullopt;
  return static_cast<double>(n) / dt;
}

json rate_json(const Count& now, const Count& rep, bool exact,
               const char* source) {
  const double dt = now.at - rep.at;
  json j;
  j["records"] = now.records - rep.records;
  j["bytes"] = now.payload - rep.payload;
  const auto r = per_second(now.records - rep.records, dt);
  const auto b = per_second(now.payload - rep.payload, dt);
  j["records_per_s"] = r ? json(*r) : json(nullptr);
  j["bytes_per_s"] = b ? json(*b) : json(nullptr);
  j["records_exact"] = exact;
  j["source"] = source;
  return j;
}

// "12.3k", "1.2M", "980".
std::string human_count(double v) {
  char buf[32];
  if (v >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.1fG", v / 1e9);
  } else if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
  } else if (v >= 1e4) {
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  }
  return buf;
}

std::string rate_cell(const json& rate, const char* field, bool bytes) {
  if (rate.is_null() || rate[field].is_null()) return "-";
  const double v = rate[field].get<double>();
  std::string s = bytes ? human_bytes(v) + "/s" : human_count(v);
  if (!rate["records_exact"].get<bool>()) s = "~" + s;
  return s;
}

// One ring's report for the interval just ended; resets the interval.
json report(Watched& w, const SegmentInfo& info, const std::string& state) {
  json j;
  j["key"] = hex_key(w.key);
  j["shmid"] = w.shmid;
  if (w.corrupt || !w.seg) {
    j["state"] = w.corrupt ? "corrupt" : "error";
    j["error"] = w.why;
    return j;
  }
  const Segment& seg = *w.seg;
  const bool broadcast = seg.kind() == Kind::broadcast;
  j["kind"] = kind_name(seg.kind());
  j["state"] = state;
  j["capacity"] = info.capacity;
  j["used_bytes"] = info.used_bytes;
  j["fill_percent"] = info.capacity
                          ? 100.0 * static_cast<double>(info.used_bytes) /
                                static_cast<double>(info.capacity)
                          : 0.0;
  // In: from the drop-slow producer's published counts when it has them
  // (exact at any speed), else from the walks.
  json in;
  if (w.pub && w.pub_rep_ok) {
    in = rate_json(w.pub_now, w.pub_rep, true, "producer");
  } else {
    in = rate_json(w.in, w.in_rep, w.in_exact,
                   seg.kind() == Kind::slots ? "positions" : "walk");
  }
  const double dt = w.tail_at - w.tail_rep_at;
  const std::uint64_t moved = w.tail - w.tail_rep;
  const double unit = seg.kind() == Kind::slots ? seg.slot_size() : 1.0;
  in["ring_bytes_per_s"] =
      dt > 0 ? json(static_cast<double>(moved) * unit / dt) : json(nullptr);
  j["in"] = in;
  int live = 0;
  for (const auto& p : info.producers) live += p.alive ? 1 : 0;
  j["producers"] = {{"attached", info.producers.size()},
                    {"alive", live},
                    {"max", info.max_producers}};
  json wait = {{"strategy", wait_name(seg.wait_strategy())}};
  auto state_of_wait = [&](bool waiting) {
    return seg.wait_strategy() == WaitStrategy::spin
               ? "spinning"
               : (waiting ? "sleeping" : "awake");
  };
  wait["consumer"] = state_of_wait(w.consumer_waiting);
  wait["producer"] = state_of_wait(w.producer_waiting);
  wait["consumer_sleeping_fraction"] =
      w.samples ? static_cast<double>(w.consumer_waits) /
                      static_cast<double>(w.samples)
                : 0.0;
  wait["producer_sleeping_fraction"] =
      w.samples ? static_cast<double>(w.producer_waits) /
                      static_cast<double>(w.samples)
                : 0.0;
  j["wait"] = wait;
  j["samples"] = w.samples;
  if (!broadcast) {
    j["out"] = w.consumer.known
                   ? rate_json(w.consumer.now, w.consumer.rep, w.consumer.exact,
                               seg.kind() == Kind::slots ? "positions" : "walk")
                   : json(nullptr);
    j["consumer"] =
        info.consumer_pid != 0
            ? json{{"pid", info.consumer_pid}, {"alive", info.consumer_alive}}
            : json(nullptr);
    j["lag_bytes"] = info.used_bytes;
    j["lag_records"] = w.consumer.known
                           ? json(w.in.records - w.consumer.now.records)
                           : json(nullptr);
    w.consumer.rep = w.consumer.now;
    w.consumer.exact = true;
  } else {
    j["overrun"] = seg.overrun() == Overrun::drop_slow ? "drop-slow" : "wait";
    json consumers = json::array();
    for (auto& [slot, side] : w.cursors) {
      json cj;
      cj["cursor"] = slot;
      cj["pid"] = side.pid;
      bool alive = false;
      for (const auto& ic : info.cursors) {
        if (ic.slot == slot) alive = ic.alive;
      }
      // From the last sample: more than the capacity for a lapped
      // drop-slow cursor (info()'s lag says 0 there).
      const std::uint64_t lag = w.tail - side.position;
      cj["alive"] = alive;
      cj["position"] = side.position;
      cj["lag_bytes"] = lag;
      // Its released position advanced over delivered and lost records.
      const std::int64_t lost_bytes =
          static_cast<std::int64_t>(side.lost - side.lost_rep);
      const double per_record = w.mean.records
                                    ? static_cast<double>(w.mean.payload) /
                                          static_cast<double>(w.mean.records)
                                    : 0.0;
      const std::int64_t lost_records =
          lost_bytes == 0 ? 0
          : per_record > 0
              ? std::max<std::int64_t>(
                    1,
                    std::llround(static_cast<double>(lost_bytes) / per_record))
              : 0;
      Count delivered = side.now;
      delivered.records -= lost_records;
      delivered.payload -= lost_bytes;
      json out = side.known ? rate_json(delivered, side.rep,
                                        side.exact && lost_bytes == 0, "walk")
                            : json(nullptr);
      if (side.known) {
        cj["records_per_s"] = out["records_per_s"];
        cj["bytes_per_s"] = out["bytes_per_s"];
        cj["records"] = out["records"];
        cj["bytes"] = out["bytes"];
        cj["records_exact"] = out["records_exact"];
      } else {
        cj["records_per_s"] = nullptr;
        cj["bytes_per_s"] = nullptr;
        cj["records_exact"] = false;
      }
      cj["lag_records"] =
          side.known ? json(w.in.records - side.now.records) : json(nullptr);
      cj["lost_bytes"] = lost_bytes;
      cj["lost_records"] = lost_records;
      cj["lost_records_exact"] = lost_bytes == 0;
      consumers.push_back(cj);
      side.rep = delivered;
      side.lost_rep = side.lost;
      side.exact = true;
    }
    j["consumers"] = consumers;
  }
  // The interval starts again.
  w.in_rep = w.in;
  w.in_exact = true;
  if (w.pub) {
    w.pub_rep = w.pub_now;
    w.pub_rep_ok = true;
  }
  w.tail_rep = w.tail;
  w.tail_rep_at = w.tail_at;
  w.samples = w.consumer_waits = w.producer_waits = 0;
  return j;
}

void print_table(const json& rings, bool tty, double elapsed) {
  std::string out;
  char line[512];
  if (tty) out += "\033[H\033[2J";
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", std::localtime(&now));
  std::snprintf(line, sizeof line,
                "shm-ring watch  %s  (%.1f s interval, ~ estimated)\n", stamp,
                elapsed);
  out += line;
  std::snprintf(line, sizeof line,
                "%-10s %-9s %8s %11s %8s %11s %6s %9s %5s %-11s %s\n", "KEY",
                "KIND", "IN rec/s", "IN B/s", "OUT rec/s", "OUT B/s", "FILL",
                "LAG", "PROD", "WAIT C/P", "STATE");
  out += line;
  for (const json& r : rings) {
    const std::string key = r["key"].get<std::string>();
    const std::string state = r["state"].get<std::string>();
    if (!r.contains("kind")) {
      std::snprintf(line, sizeof line, "%-10s %s: %s\n", key.c_str(),
                    state.c_str(), r.value("error", "").c_str());
      out += line;
      continue;
    }
    const json& in = r["in"];
    const bool broadcast = r["kind"] == "broadcast";
    const json out_rate = broadcast ? json(nullptr) : r["out"];
    char fill[16];
    std::snprintf(fill, sizeof fill, "%.1f%%", r["fill_percent"].get<double>());
    char prod[16];
    std::snprintf(prod, sizeof prod, "%d/%d",
                  r["producers"]["alive"].get<int>(),
                  r["producers"]["max"].get<int>());
    std::string wait;
    if (r["wait"]["strategy"] == "spin") {
      wait = "spin";
    } else {
      wait =
          std::string(r["wait"]["consumer"] == "sleeping" ? "sleep" : "run") +
          "/" + (r["wait"]["producer"] == "sleeping" ? "sleep" : "run");
    }
    std::snprintf(
        line, sizeof line,
        "%-10s %-9s %8s %11s %8s %11s %6s %9s %5s %-11s %s\n", key.c_str(),
        r["kind"].get<std::string>().c_str(),
        rate_cell(in, "records_per_s", false).c_str(),
        rate_cell(in, "bytes_per_s", true).c_str(),
        broadcast ? "" : rate_cell(out_rate, "records_per_s", false).c_str(),
        broadcast ? "" : rate_cell(out_rate, "bytes_per_s", true).c_str(), fill,
        broadcast ? "" : human_bytes(r["lag_bytes"].get<double>()).c_str(),
        prod, wait.c_str(), state.c_str());
    out += line;
    if (!broadcast) continue;
    for (const json& c : r["consumers"]) {
      json rate = {{"records_per_s", c["records_per_s"]},
                   {"bytes_per_s", c["bytes_per_s"]},
                   {"records_exact", c["records_exact"]}};
      std::string lost;
      if (c["lost_bytes"].get<std::int64_t>() != 0) {
        lost = " lost " +
               std::string(c["lost_records_exact"].get<bool>() ? "" : "~") +
               std::to_string(c["lost_records"].get<std::int64_t>()) + " rec " +
               human_bytes(c["lost_bytes"].get<double>());
      }
      char who[48];
      std::snprintf(who, sizeof who, "cursor %d pid %d%s",
                    c["cursor"].get<int>(), c["pid"].get<int>(),
                    c["alive"].get<bool>() ? "" : "?");
      std::snprintf(line, sizeof line, "  %-29s %8s %11s %6s %9s%s\n", who,
                    rate_cell(rate, "records_per_s", false).c_str(),
                    rate_cell(rate, "bytes_per_s", true).c_str(), "",
                    human_bytes(c["lag_bytes"].get<double>()).c_str(),
                    lost.c_str());
      out += line;
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

Watched make_watched(Segment seg) {
  Watched w;
  w.key = seg.key();
  w.shmid = seg.id();
  w.name = hex_key(w.key);
  w.seg.emplace(std::move(seg));
  w.attached = true;
  return w;
}

// Segments of this IPC namespace: shmid -> (key, size).
std::map<int, std::pair<key_t, std::uint64_t>> list_segments() {
  std::map<int, std::pair<key_t, std::uint64_t>> out;
  std::ifstream in("/proc/sysvipc/shm");
  if (!in) fail(kExitInternal, "cannot read /proc/sysvipc/shm");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    long long key = 0, shmid = -1;
    unsigned perms = 0;
    std::uint64_t size = 0;
    if (ls >> key >> shmid >> std::oct >> perms >> std::dec >> size) {
      out[static_cast<int>(shmid)] = {static_cast<key_t>(key), size};
    }
  }
  return out;
}

}  // namespace

void add_watch_flags(CLI::App& sub, WatchFlags& w) {
  sub.add_flag("--all", w.all, "Watch every ring of this IPC namespace");
  sub.add_option("--interval", w.interval,
                 "Seconds between reports (default 1; fractions allowed)")
      ->check(CLI::Range(0.01, 86400.0));
  sub.add_option("--count", w.count,
                 "Stop after this many reports (default: until Ctrl-C)")
      ->check(CLI::Range(0LL, 1LL << 40));
  sub.add_flag("--json", w.json,
               "One JSON object per report and line instead of the table");
}

int run_watch(const AddressFlags& address, const WatchFlags& flags,
              std::string (*state_of)(const SegmentInfo&)) {
  install_signal_handlers();
  std::vector<Watched> rings;
  std::set<int> ignored;  // --all: shmids that are not rings or removing
  if (!flags.all) {
    auto s = address.id >= 0 ? Segment::attach_id_read_only(address.id)
                             : Segment::attach_read_only(resolve_key(address));
    if (!s) fail(s.error());
    rings.push_back(make_watched(std::move(s).value()));
  }
  auto rescan = [&] {
    const auto segments = list_segments();
    std::erase_if(rings, [&](const Watched& w) {
      return !w.attached && segments.count(w.shmid) == 0;
    });
    std::erase_if(ignored, [&](int id) { return segments.count(id) == 0; });
    for (const auto& [shmid, ks] : segments) {
      if (ignored.count(shmid) != 0) continue;
      if (std::any_of(rings.begin(), rings.end(),
                      [&](const Watched& w) { return w.shmid == shmid; })) {
        continue;
      }
      if (!Segment::looks_like_ring(shmid, ks.second)) {
        ignored.insert(shmid);
        continue;
      }
      auto s = Segment::attach_id_read_only(shmid);
      if (!s) {
        if (s.error().code == Errc::not_found) continue;
        Watched w;
        w.key = ks.first;
        w.shmid = shmid;
        w.name = hex_key(ks.first);
        const Errc code = s.error().code;
        w.corrupt = code == Errc::not_shmring || code == Errc::size_mismatch ||
                    code == Errc::not_ready;
        w.why = s.error().message;
        rings.push_back(std::move(w));
        continue;
      }
      if (s->removed()) {
        ignored.insert(shmid);
        continue;
      }
      rings.push_back(make_watched(std::move(s).value()));
    }
    std::sort(rings.begin(), rings.end(),
              [](const Watched& a, const Watched& b) {
                return static_cast<std::uint32_t>(a.key) <
                           static_cast<std::uint32_t>(b.key) ||
                       (a.key == b.key && a.shmid < b.shmid);
              });
  };
  if (flags.all) rescan();
  for (auto& w : rings) sample(w);

  const bool tty = ::isatty(STDOUT_FILENO) != 0 && !flags.json;
  double last = now_seconds();
  const double period = std::min(kSamplePeriod, flags.interval / 2);
  for (long long reports = 0; flags.count == 0 || reports < flags.count;
       ++reports) {
    const double due = last + flags.interval;
    for (;;) {
      const double left = due - now_seconds();
      if (left <= 0) break;
      const auto ms = std::chrono::milliseconds(
          std::max<long long>(1, std::llround(std::min(left, period) * 1000)));
      if (!nap(ms)) {
        return kExitOk;  // SIGINT, SIGTERM, SIGHUP: a watch ends quietly
      }
      for (auto& w : rings) sample(w);
    }
    const double now = now_seconds();
    json out = json::array();
    std::vector<std::size_t> gone;
    for (std::size_t i = 0; i < rings.size(); ++i) {
      Watched& w = rings[i];
      if (w.seg && w.seg->removed()) {
        if (!flags.all) {
          fail(kExitNotFound, std::string(to_string(Errc::removed)) +
                                  ": ring " + w.name +
                                  " was removed while watched");
        }
        gone.push_back(i);
        continue;
      }
      if (!flags.all && w.corrupt) fail(kExitCorrupt, w.why);
      const SegmentInfo info = w.seg ? w.seg->info() : SegmentInfo{};
      out.push_back(report(w, info, w.seg ? state_of(info) : ""));
    }
    for (auto it = gone.rbegin(); it != gone.rend(); ++it) {
      ignored.insert(rings[*it].shmid);
      rings.erase(rings.begin() + static_cast<std::ptrdiff_t>(*it));
    }
    if (flags.json) {
      json line = {{"time", static_cast<double>(std::time(nullptr))},
                   {"interval_s", now - last},
                   {"rings", out}};
      std::cout << line.dump() << std::endl;
    } else {
      print_table(out, tty, now - last);
    }
    last = now;
    if (flags.all) {
      rescan();
      for (auto& w : rings) {
        if (!w.init) sample(w);
      }
    }
  }
  return kExitOk;
}

}  // namespace shmring::tools
