// Broadcast: one producer process feeding 1, 2 and 3 consumer
// processes, every consumer receiving every 4 KiB record, two ways:
//   shmring-broadcast  one broadcast ring; the producer writes each record
//                      once (reserve + memcpy + commit), every consumer
//                      peeks it in place (peek_batch + memcpy + release);
//   shmring-tee        one SPSC ring per consumer; the producer copies each
//                      record into every ring, as `tee` into N pipes would.
// The figure is aggregate delivery: records every consumer got, times the
// record size, over the slowest consumer's time (bytes_per_s); every
// consumer must get every record the producer sent, in order.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "bench/peer_common.h"
#include "bench/private_ring.h"
#include "bench/scenarios.h"

namespace bench {
namespace {

constexpr std::size_t kSize = 4096;

template <class Reader>  // Consumer (tee into SPSC rings) or Subscriber
void consume_all(Child& child, Reader& c, const Config& config) {
  std::vector<shmring::Record> recs(config.batch);
  alignas(64) static Msg<kSize> dst;
  SeqCheck check;
  const auto t0 = child.ready_and_wait();
  for (;;) {
    std::size_t n = 0;
    if (!next_batch(c, recs, &n)) break;
    for (std::size_t k = 0; k < n; ++k) {
      if (recs[k].size != kSize) {
        ++check.errors;
        continue;
      }
      std::memcpy(&dst, recs[k].data, kSize);  // into the consumer's hands
      check(seq_of(&dst));
    }
    c.release();
  }
  finish_consumer(child, t0, check, kSize);
  c.close();
}

RepOutcome broadcast_once(const Config& config, const Placement& pl,
                          int consumers, bool tee) {
  RepOutcome out;
  try {
    shmring::RingOptions o;
    o.capacity = config.ring_bytes;
    std::vector<PrivateRing> rings;
    rings.reserve(static_cast<std::size_t>(consumers));
    if (tee) {
      o.kind = shmring::Kind::spsc;
      for (int i = 0; i < consumers; ++i) rings.emplace_back(o);
    } else {
      o.kind = shmring::Kind::broadcast;
      o.max_consumers = static_cast<std::uint32_t>(consumers);
      rings.emplace_back(o);
    }
    std::vector<ChildSpec> specs;
    specs.push_back({pl.producer_cpu, [&](Child& child) {
                       std::vector<shmring::Producer> ps;
                       for (auto& r : rings)
                         ps.push_back(attach_producer(r.segment()));
                       alignas(64) static Msg<kSize> src =
                           source_record<kSize>();
                       produce_loop<kSize>(child, [&](std::uint64_t seq) {
                         set_seq(src, seq);
                         for (auto& p : ps) {  // tee: one copy per ring
                           auto r = p.try_reserve(kSize);
                           if (!r) {
                             r = p.reserve(kSize);
                             check_status(r.status, "reserve");
                           }
                           std::memcpy(r.bytes.data(), &src, kSize);
                           p.commit();
                         }
                       });
                       for (auto& p : ps) p.close();
                     }});
    for (int i = 0; i < consumers; ++i) {
      specs.push_back(
          {pl.consumer_cpu, [&, i](Child& child) {
             shmring::Segment& seg =
                 rings[tee ? static_cast<std::size_t>(i) : 0].segment();
             if (tee) {
               shmring::Consumer c = attach_consumer(seg);
               consume_all(child, c, config);
             } else {
               shmring::Subscriber c = attach_subscriber(seg);
               consume_all(child, c, config);
             }
           }});
    }
    // The broadcast producer waits for its consumers (it writes nothing
    // before the first attaches): the children attach before the start.
    RunResult r =
        run_children(specs, Mode::processes, seconds(config.duration));
    if (!r.error.empty()) {
      out.error = r.error;
      return out;
    }
    const std::uint64_t sent = r.children[0].count;
    std::uint64_t got = 0;
    std::int64_t slowest = 1;
    for (int i = 1; i <= consumers; ++i) {
      const ChildResult& c = r.children[static_cast<std::size_t>(i)];
      if (c.errors != 0) {
        out.error = "consumer " + std::to_string(i) + ": " +
                    std::to_string(c.errors) + " records out of order";
        return out;
      }
      if (c.count != sent) {
        out.error = "sent " + std::to_string(sent) + ", consumer " +
                    std::to_string(i) + " received " + std::to_string(c.count);
        return out;
      }
      got += c.count;
      slowest = std::max(slowest, c.ns);
    }
    const double secs = static_cast<double>(slowest) / 1e9;
    out.values["bytes_per_s"] = static_cast<double>(got * kSize) / secs;
    out.values["records_per_s"] = static_cast<double>(sent) / secs;
  } catch (const std::exception& ex) {
    out.error = ex.what();
  }
  return out;
}

}  // namespace

void run_broadcast(const Config& config, Report& report) {
  std::vector<Cell> cells;
  for (int consumers : {1, 2, 3}) {
    for (bool tee : {false, true}) {
      for (const Placement& pl : placements(config)) {
        Cell c;
        c.row.group = "broadcast";
        c.row.peer = tee ? "shmring-tee" : "shmring-broadcast";
        c.row.label = std::string(tee ? "tee into " : "broadcast to ") +
                      std::to_string(consumers) +
                      (tee ? " SPSC ring" : " consumer") +
                      (consumers > 1 ? "s" : "");
        c.row.note = tee ? "the producer copies each record into every "
                           "consumer's SPSC ring"
                         : "one broadcast ring, each record written once and "
                           "read in place by every consumer";
        c.row.size = kSize;
        c.row.placement = pl.name;
        c.row.id = "broadcast/" + c.row.peer + "/" + std::to_string(consumers) +
                   "c/" + pl.name;
        c.metric_names = {"bytes_per_s", "records_per_s"};
        c.once = [&config, pl, consumers, tee] {
          return broadcast_once(config, pl, consumers, tee);
        };
        cells.push_back(std::move(c));
      }
    }
  }
  run_cells(config, cells, report);
}

}  // namespace bench
