// Example consumer: prints every record of the SPSC ring under KEY on its
// own line until every producer has closed and the ring is drained, then
// removes the ring (SysV segments outlive processes). Creates the ring if
// the producer has not yet. Exits 1 with the library's message on failure.
//
//   consume 0x5eed > out.txt &   # either side may start first
//   produce 0x5eed hello "shared memory"
#include <iostream>

#include "ring/shmring.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consume KEY\n";
    return 2;
  }
  auto key = shmring::parse_key(argv[1]);
  if (!key) {
    std::cerr << "consume: " << key.error().message << "\n";
    return 2;
  }
  auto segment = shmring::Segment::attach_or_create(
      *key, {.kind = shmring::Kind::spsc, .capacity = 1 << 16});
  if (!segment) {
    std::cerr << "consume: " << segment.error().message << "\n";
    return 1;
  }
  int rc = 0;
  {
    auto consumer = shmring::Consumer::attach(*segment);
    if (!consumer) {
      std::cerr << "consume: " << consumer.error().message << "\n";
      rc = 1;
    }
    while (consumer) {
      // Waits for a producer, spins briefly, then sleeps on a futex.
      shmring::Peeked p = consumer->peek();
      if (p.status == shmring::Status::closed) break;  // drained, all closed
      if (!p) {
        std::cerr << "consume: " << shmring::to_string(p.status) << "\n";
        rc = 1;
        break;
      }
      auto bytes = p.record.bytes();  // in place, valid until release()
      std::cout.write(reinterpret_cast<const char*>(bytes.data()),
                      static_cast<std::streamsize>(bytes.size()));
      std::cout << '\n';
      consumer->release();
    }
  }
  if (auto removed = segment->remove(); !removed) {
    std::cerr << "consume: " << removed.error().message << "\n";
    rc = 1;
  }
  std::cout.flush();
  return std::cout ? rc : 1;
}
