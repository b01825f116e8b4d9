// Scenarios 2 and 3: one producer process -> one consumer process, every
// peer at every record size. Reports records/s and payload bytes/s.
#include <sys/socket.h>

#include <string>
#include <vector>

#include "bench/peers/boost_lockfree.h"
#include "bench/peers/boost_message_queue.h"
#include "bench/peers/fixed_ring.h"
#include "bench/peers/iceoryx.h"
#include "bench/peers/pipe.h"
#include "bench/peers/readerwriterqueue.h"
#include "bench/peers/shmring.h"
#include "bench/peers/unix_socket.h"
#include "bench/peers/zmq.h"
#include "bench/scenarios.h"

namespace bench {
namespace {

// One repetition: a fresh channel, two children, the consumer's rate.
template <class Peer, std::size_t S>
RepOutcome run_once(const Config& config, const Placement& pl, Mode mode) {
  RepOutcome out;
  try {
    Peer peer(config);
    std::vector<ChildSpec> specs = {
        {pl.producer_cpu, [&](Child& c) { peer.produce(c); }},
        {pl.consumer_cpu, [&](Child& c) { peer.consume(c); }},
    };
    out = stream_rates(run_children(specs, mode, seconds(config.duration),
                                    [&] { peer.after_fork(); }),
                       S);
  } catch (const std::exception& ex) {
    out.error = ex.what();
  }
  return out;
}

struct PeerInfo {
  const char* name;
  const char* label;
  const char* note;
};

template <std::size_t S>
void add_cells(const Config& config, std::vector<Cell>& cells) {
  auto add = [&](const PeerInfo& info, Mode mode, auto once) {
    for (const Placement& pl : placements(config)) {
      Cell c;
      c.row.group = "throughput";
      c.row.peer = info.name;
      c.row.label = info.label;
      c.row.note = info.note;
      c.row.size = S;
      c.row.placement = pl.name;
      c.row.id = c.row.group + "/" + c.row.peer + "/" + std::to_string(S) +
                 "/" + pl.name;
      c.metric_names = {"records_per_s", "bytes_per_s"};
      c.once = [&config, pl, mode, once] { return once(config, pl, mode); };
      cells.push_back(std::move(c));
    }
  };
  add({"shmring", "shmring SPSC, batched",
       "try_reserve + memcpy + commit_deferred, flush() every N records; "
       "try_peek_batch + memcpy each + one release() per batch"},
      Mode::processes, run_once<ShmringPeer<S, RingVariant::batched>, S>);
  add({"shmring-per-record", "shmring SPSC, commit()/release() per record",
       "try_reserve + memcpy + commit(); try_peek + memcpy + release()"},
      Mode::processes, run_once<ShmringPeer<S, RingVariant::per_record>, S>);
  add({"shmring-queue", "shmring Queue<T>",
       "QueueWriter::try_push / QueueReader::try_pop on a slots ring of "
       "S-byte elements (no record headers)"},
      Mode::processes, run_once<ShmringPeer<S, RingVariant::queue>, S>);
  add({"fixed-ring-limit", "fixed-slot SPSC ring (limit)",
       "fixed S-byte slots in MAP_SHARED, cached indices, release store per "
       "record; no headers, no lifecycle, no sleeping"},
      Mode::processes, run_once<FixedRingPeer<S>, S>);
  add({"lockfree-spsc-shm", "Boost.Lockfree spsc_queue (processes, shm)",
       "spsc_queue<T, capacity<1 MiB / S>> placement-new'd in a MAP_SHARED "
       "mapping before fork; push/pop one element"},
      Mode::processes, run_once<LockfreePeer<S>, S>);
  add({"lockfree-spsc-threads", "Boost.Lockfree spsc_queue (threads)",
       "the same queue between two threads of one process"},
      Mode::threads, run_once<LockfreePeer<S>, S>);
  add({"readerwriterqueue-threads", "moodycamel ReaderWriterQueue (threads)",
       "ReaderWriterQueue<T> of 1 MiB / S elements between two threads; "
       "try_enqueue / try_dequeue one element (never allocates)"},
      Mode::threads, run_once<RwqPeer<S>, S>);
  // The end of stream is acknowledged through shared memory, and every
  // ZeroMQ call has a timeout (ZmqSocket in peers2.h): a lost message fails
  // the row within seconds instead of hanging the run.
  add({"zmq-push-pull", "ZeroMQ ipc:// PUSH/PULL",
       "zmq_send / zmq_recv of one S-byte message each, default high-water "
       "marks; the producer closes only after the consumer confirmed the "
       "end of stream"},
      Mode::processes, run_once<ZmqPushPullPeer<S>, S>);
  {
    const std::size_t before = cells.size();
    add({"iceoryx", "iceoryx 2.0.3 publish/subscribe",
         "own iox-roudi per repetition; Publisher<T> loan + memcpy + "
         "publish (WAIT_FOR_CONSUMER), Subscriber take + memcpy "
         "(BLOCK_PRODUCER, queue 256), polled"},
        Mode::processes, [](const Config& c, const Placement& pl, Mode) {
          return iceoryx_throughput_once(c, pl, S);
        });
    const std::string why = iceoryx_unavailable();
    for (std::size_t i = before; i < cells.size(); ++i)
      cells[i].row.skipped = why;
  }
  add({"boost-message-queue", "Boost.Interprocess message_queue",
       "send/receive one message each, queue of ring_bytes / S messages"},
      Mode::processes, run_once<MessageQueuePeer<S>, S>);
  add({"pipe", "pipe, one write per record",
       "write(2) per record; reader read(2)s 64 KiB at a time"},
      Mode::processes, run_once<PipePeer<S>, S>);
  add({"unix-stream", "AF_UNIX SOCK_STREAM",
       "write(2) per record; reader read(2)s 64 KiB at a time"},
      Mode::processes, run_once<UnixPeer<S, SOCK_STREAM>, S>);
  add({"unix-seqpacket", "AF_UNIX SOCK_SEQPACKET",
       "send(2) / recv(2) per record"},
      Mode::processes, run_once<UnixPeer<S, SOCK_SEQPACKET>, S>);
}

}  // namespace

void run_throughput(const Config& config, Report& report) {
  for (std::size_t size : config.sizes) {
    std::vector<Cell> cells;
    switch (size) {
      case 8:
        add_cells<8>(config, cells);
        break;
      case 64:
        add_cells<64>(config, cells);
        break;
      case 512:
        add_cells<512>(config, cells);
        break;
      case 4096:
        add_cells<4096>(config, cells);
        break;
      case 65536:
        add_cells<65536>(config, cells);
        break;
      default: {
        Row row;
        row.group = "throughput";
        row.peer = "all";
        row.size = size;
        row.id = "throughput/all/" + std::to_string(size);
        row.error = "unsupported size (8, 64, 512, 4096, 65536)";
        report.add(std::move(row));
        continue;
      }
    }
    run_cells(config, cells, report);
  }
}

}  // namespace bench
