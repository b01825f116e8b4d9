// shmpoke: a test-only hostile peer for the tool tests. It maps a segment by
// key with raw shmget/shmat (no validation) and rewrites one control-block
// field, or changes the segment's owner and mode. Field offsets come from
// ring/internal/layout.h, so no layout constant is copied here.
//
//   shmpoke set KEY FIELD VALUE    FIELD: magic version kind capacity
//                                  segment_size state pid_namespace head
//                                  tail release_to sem_id, or header0: the
//                                  word at data offset 0 of an spsc or
//                                  mpsc ring (its first record's header)
//   shmpoke get KEY FIELD
//   shmpoke chown KEY UID MODE     (shmctl IPC_SET; MODE octal)
//
// Exit 0 on success, 1 on a system error, 2 on bad arguments.
#include <sys/ipc.h>
#include <sys/shm.h>

#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ring/internal/layout.h"

namespace {

using shmring::layout::ControlBlock;

struct Field {
  const char* name;
  std::size_t offset;
  std::size_t width;
};

const Field kFields[] = {
    {"magic", offsetof(ControlBlock, magic), 8},
    {"version", offsetof(ControlBlock, version), 4},
    {"kind", offsetof(ControlBlock, kind), 4},
    {"capacity", offsetof(ControlBlock, capacity), 8},
    {"segment_size", offsetof(ControlBlock, segment_size), 8},
    {"state", offsetof(ControlBlock, state), 4},
    {"pid_namespace", offsetof(ControlBlock, pid_namespace), 8},
    {"head", offsetof(ControlBlock, head), 8},
    {"tail", offsetof(ControlBlock, tail), 8},
    {"release_to", offsetof(ControlBlock, release_to), 8},
    {"sem_id", offsetof(ControlBlock, sem_id), 4},
    {"header0", shmring::layout::kDataOffset, 8},
};

int usage() {
  std::fprintf(stderr,
               "usage: shmpoke set KEY FIELD VALUE | get KEY FIELD | "
               "chown KEY UID MODE\n");
  return 2;
}

const Field* find_field(const char* name) {
  for (const Field& f : kFields) {
    if (std::strcmp(f.name, name) == 0) return &f;
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return usage();
  const std::string cmd = argv[1];
  const key_t key = static_cast<key_t>(std::strtoul(argv[2], nullptr, 0));
  const int id = ::shmget(key, 0, 0);
  if (id < 0) {
    std::fprintf(stderr, "shmpoke: shmget(%s): %s\n", argv[2],
                 std::strerror(errno));
    return 1;
  }
  if (cmd == "chown") {
    if (argc != 5) return usage();
    struct shmid_ds ds {};
    if (::shmctl(id, IPC_STAT, &ds) != 0) return 1;
    ds.shm_perm.uid = static_cast<uid_t>(std::strtoul(argv[3], nullptr, 0));
    ds.shm_perm.mode =
        static_cast<unsigned short>(std::strtoul(argv[4], nullptr, 8));
    if (::shmctl(id, IPC_SET, &ds) != 0) {
      std::fprintf(stderr, "shmpoke: IPC_SET: %s\n", std::strerror(errno));
      return 1;
    }
    return 0;
  }
  const Field* f = find_field(argv[3]);
  if (f == nullptr || (cmd == "set" && argc != 5) ||
      (cmd == "get" && argc != 4) || (cmd != "set" && cmd != "get")) {
    return usage();
  }
  void* base = ::shmat(id, nullptr, 0);
  if (base == reinterpret_cast<void*>(-1)) {
    std::fprintf(stderr, "shmpoke: shmat: %s\n", std::strerror(errno));
    return 1;
  }
  auto* p = static_cast<unsigned char*>(base) + f->offset;
  std::uint64_t v = 0;
  if (cmd == "get") {
    std::memcpy(&v, p, f->width);  // little endian, as the segment is
    std::printf("%" PRIu64 "\n", v);
  } else {
    v = std::strtoull(argv[4], nullptr, 0);
    std::memcpy(p, &v, f->width);
  }
  ::shmdt(base);
  return 0;
}
