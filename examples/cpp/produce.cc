// Example producer: writes each argument after KEY as one record into the
// SPSC ring under KEY (creating the ring if it does not exist yet), then
// closes, which the consumer sees as end of stream. Exits 1 with the
// library's message if anything fails.
//
//   consume 0x5eed > out.txt &   # either side may start first
//   produce 0x5eed hello "shared memory"
#include <cstring>
#include <iostream>
#include <span>

#include "ring/shmring.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: produce KEY [RECORD...]\n";
    return 2;
  }
  auto key = shmring::parse_key(argv[1]);
  if (!key) {
    std::cerr << "produce: " << key.error().message << "\n";
    return 2;
  }
  // The consumer asks for the same options: whoever comes first creates it.
  auto segment = shmring::Segment::attach_or_create(
      *key, {.kind = shmring::Kind::spsc, .capacity = 1 << 16});
  if (!segment) {
    std::cerr << "produce: " << segment.error().message << "\n";
    return 1;
  }
  auto producer = shmring::Producer::attach(*segment);
  if (!producer) {
    std::cerr << "produce: " << producer.error().message << "\n";
    return 1;
  }
  for (int i = 2; i < argc; ++i) {
    // Zero-copy: reserve room in the ring, write in place, publish.
    const std::size_t n = std::strlen(argv[i]);
    shmring::Reservation r = producer->reserve(n);
    if (!r) {
      std::cerr << "produce: " << shmring::to_string(r.status) << "\n";
      return 1;
    }
    std::memcpy(r.bytes.data(), argv[i], n);
    producer->commit(n);
  }
  producer->close();  // end of stream once the consumer has drained it
  return 0;
}
