// Streams on a ring, as a reader of a FIFO sees them (docs/tools.md,
// "Streams"). A stream is what the ring's producers write from the first
// one's attach until every one has closed and the consumer has drained the
// ring: Consumer::peek then returns Status::closed. The ring outlives its
// streams; the next producer to attach starts a new one.
//
// StreamReader reads spsc and mpsc rings through a Consumer and broadcast
// rings through a Subscriber, and adds what those leave to their caller:
// - between streams: attached to a ring whose last stream an earlier
//   consumer already read to its end (drained, no producer attached), it
//   waits for the next producer instead of reporting that old end again;
// - StreamOptions::producers: the end of stream waits until that many
//   producers have attached (concurrent MPSC producers that start late);
// - StreamOptions::follow: at each end of stream, wait for the next one.
// The try calls and wait_fd() follow the same rules without waiting, for
// event loops and other languages' bindings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <variant>

#include "ring/broadcast.h"
#include "ring/deadline.h"
#include "ring/ring.h"
#include "ring/segment.h"
#include "ring/status.h"

namespace shmring {

struct StreamOptions {
  // The end of stream needs this many producers (0: any). They are counted
  // from the ring's creation on a ring no consumer has read yet (producers
  // may start first), else from this reader's attach.
  std::uint32_t producers = 0;
  // At the end of each stream wait for the next one (like tail -f) instead
  // of returning Status::closed.
  bool follow = false;
};

class StreamReader {
 public:
  // Notes where the ring is between streams, then takes the consumer role
  // (Consumer::attach) or, on a broadcast ring, a cursor
  // (Subscriber::attach), with their errors.
  static Result<StreamReader> attach(Segment& segment,
                                     StreamOptions options = {});

  // Like Consumer::peek_batch, waiting `timeout` for data (each call), and
  // as long for a producer while the stream has not started (each wait for
  // one; a call that returns data ends it). Its status:
  //   ok           at least one record (records says which);
  //   closed       end of stream (never with follow);
  //   peer_dead    the producer died before closing its stream; final
  //                without follow, else said once and the next call
  //                follows on to the next stream;
  //   timed_out    no data, or no (further) producer, for `timeout`:
  //                waiting_for_producer() says which;
  //   overrun      (drop-slow broadcast) records were lost: see
  //                subscriber()->lost_records();
  //   removed      the ring was removed while no producer was attached
  //                and no other process maps it (none can attach it):
  //                final;
  //   interrupted, corrupt as Consumer::peek_batch.
  [[nodiscard]] PeekedBatch peek_batch(std::span<Record> out,
                                       Timeout timeout = kForever);
  // As peek_batch with no wait: would_block (never timed_out) when there is
  // nothing yet, including between streams while no producer has come.
  [[nodiscard]] PeekedBatch try_peek_batch(std::span<Record> out);
  // One record at a time (a batch of one).
  [[nodiscard]] Peeked try_peek();
  [[nodiscard]] Peeked peek(Timeout timeout = kForever);
  // A file descriptor for poll/select/epoll (level-triggered, like
  // Consumer::wait_fd()): readable exactly when try_peek would return
  // something other than would_block. Between streams it stays unreadable
  // until a producer attaches and writes or closes. As Consumer's, it is
  // readable when created (the first try call that finds nothing clears
  // it), may be readable spuriously, never stuck; owned by this reader.
  [[nodiscard]] Result<int> wait_fd();
  void release();

  // True if the last timed_out waited for a producer rather than data.
  bool waiting_for_producer() const { return waiting_for_producer_; }
  // How many of StreamOptions::producers have not attached yet.
  std::uint32_t producers_missing() const;

  // The reader underneath on a broadcast ring (its intact() and loss
  // counts); nullptr on other kinds.
  Subscriber* subscriber() { return std::get_if<Subscriber>(&reader_); }
  // Where a corrupt result was detected (ring offset), for messages.
  std::uint64_t corrupt_offset() const;
  Segment& segment() const { return *segment_; }
  const StreamOptions& options() const { return options_; }

 private:
  using Reader = std::variant<Consumer, Subscriber>;
  StreamReader(Segment& segment, Reader reader, StreamOptions options,
               std::uint32_t producers_before, std::uint32_t stream_base,
               bool awaiting_stream);
  std::uint32_t producers_seen() const;
  // The end of a stream that is not (yet) the one to report: between
  // streams, or too few producers (StreamOptions::producers).
  bool awaiting_producer() const;
  // Once nothing_can_come(): the records of a producer that came before
  // the removal was seen, else removed while still awaiting one; nullopt
  // if a producer came and went (its stream's end, for the caller's loop).
  std::optional<PeekedBatch> last_look(std::span<Record> out);
  detail::ConsumerRole& role();

  Segment* segment_;
  Reader reader_;
  StreamOptions options_;
  // producers_seen when the current stream was awaited (at attach, or at
  // the last end of stream under follow): a change is a new producer.
  std::uint32_t producers_before_;
  // producers_seen that StreamOptions::producers counts from.
  std::uint32_t stream_base_;
  // Between streams: wait for a new producer before any end of stream.
  bool awaiting_stream_;
  bool waiting_for_producer_ = false;
};

}  // namespace shmring
