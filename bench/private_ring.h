// Private shmring rings for the scenarios and the shmring peers: a
// segment removed at once, attach helpers that throw, the consumer's
// next batch.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ring/shmring.h"

namespace bench {

// A private SysV segment, marked for removal at once: the mapping stays
// valid in this process and in the forked children (fork inherits SysV
// attachments), and the segment disappears with the last of them even if
// shm-bench is killed. Children attach Producer / Consumer after the fork.
class PrivateRing {
 public:
  explicit PrivateRing(const shmring::RingOptions& options) {
    auto s = shmring::Segment::create_private(options);
    if (!s) throw std::runtime_error("create_private: " + s.error().message);
    segment_.emplace(std::move(s).value());
    auto r = segment_->remove();
    if (!r) throw std::runtime_error("remove: " + r.error().message);
  }
  shmring::Segment& segment() { return *segment_; }

 private:
  std::optional<shmring::Segment> segment_;
};

inline shmring::Producer attach_producer(shmring::Segment& s) {
  auto p = shmring::Producer::attach(s);
  if (!p) throw std::runtime_error("Producer::attach: " + p.error().message);
  return std::move(p).value();
}
inline shmring::Subscriber attach_subscriber(shmring::Segment& s) {
  auto c = shmring::Subscriber::attach(s);
  if (!c) throw std::runtime_error("Subscriber::attach: " + c.error().message);
  return std::move(c).value();
}

inline shmring::Consumer attach_consumer(shmring::Segment& s) {
  auto c = shmring::Consumer::attach(s);
  if (!c) throw std::runtime_error("Consumer::attach: " + c.error().message);
  return std::move(c).value();
}

inline void check_status(shmring::Status s, const char* what) {
  if (s != shmring::Status::ok) {
    throw std::runtime_error(std::string(what) + ": " + shmring::to_string(s));
  }
}

// The next batch of records for `recs`: whatever is there, else waits for
// some (the consumer's default wait). False at end of stream; throws on
// any other error.
template <class Reader>  // shmring::Consumer or shmring::Subscriber
bool next_batch(Reader& c, std::vector<shmring::Record>& recs, std::size_t* n) {
  shmring::PeekedBatch b = c.try_peek_batch(recs);
  if (b.status == shmring::Status::would_block) b = c.peek_batch(recs);
  *n = b.records.size();
  if (b.status == shmring::Status::closed) return false;
  check_status(b.status, "peek_batch");
  return true;
}

}  // namespace bench
