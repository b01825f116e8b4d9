// One handle type per role and kind: records (spsc, mpsc), broadcast and
// fixed slots, each in a few lines. README.md shows this file verbatim and
// its output (//examples:docs_examples_test). Private rings (IPC_PRIVATE):
// one process here; across processes, attach the same key in each.
#include <cstdio>
#include <cstring>

#include "ring/shmring.h"

using namespace shmring;

// spsc and mpsc: Producer writes records of any size, Consumer reads them.
void records() {
  auto seg = Segment::create_private({.kind = Kind::mpsc, .capacity = 4096});
  auto producer = Producer::attach(*seg);
  auto consumer = Consumer::attach(*seg);
  if (Reservation r = producer->reserve(5)) {  // zero-copy: write in place
    std::memcpy(r.bytes.data(), "hello", 5);
    producer->commit();
  }
  producer->close();  // the last producer's close ends the stream
  for (Peeked p = consumer->peek(); p; p = consumer->peek()) {
    std::printf("record: %.*s\n", static_cast<int>(p.record.size),
                reinterpret_cast<const char*>(p.record.data));
    consumer->release();
  }
  (void)seg->remove();
}

// broadcast: every Subscriber sees every record.
void broadcast() {
  auto seg = Segment::create_private(
      {.kind = Kind::broadcast, .capacity = 4096, .max_consumers = 2});
  auto a = Subscriber::attach(*seg);
  auto b = Subscriber::attach(*seg);
  auto producer = Producer::attach(*seg);
  const char msg[] = "tick";
  (void)producer->write(std::as_bytes(std::span(msg, 4)));
  for (Subscriber* s : {&*a, &*b}) {
    Peeked p = s->peek();
    std::printf("subscriber %d: %.*s (lost %llu)\n", s->cursor(),
                static_cast<int>(p.record.size),
                reinterpret_cast<const char*>(p.record.data),
                static_cast<unsigned long long>(s->lost_records()));
    s->release();
  }
  (void)seg->remove();
}

// slots: fixed-size elements, rigtorp/SPSCQueue's data path.
struct Tick {
  int id;
  double price;
};

void slots() {
  auto seg = Segment::create_private(
      {.kind = Kind::slots, .capacity = 4096, .slot_size = sizeof(Tick)});
  auto writer = QueueWriter<Tick>::attach(*seg);
  auto reader = QueueReader<Tick>::attach(*seg);
  (void)writer->push({7, 101.5});
  if (Popped<Tick> t = reader->pop()) {
    std::printf("tick %d at %.1f\n", t.value.id, t.value.price);
  }
  (void)seg->remove();
}

int main() {
  records();
  broadcast();
  slots();
}
