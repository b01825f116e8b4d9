#include "ring/internal/sysv.h"

#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <system_error>

#include "ring/internal/layout.h"

namespace shmring {

namespace {

std::string read_proc(const char* path) {
  std::ifstream in(path);
  std::string s;
  in >> s;
  return s.empty() ? "?" : s;
}

// A field of /proc/meminfo ("Hugepagesize:  2048 kB"), in its units; -1 if
// absent.
long long meminfo_field(const std::string& field) {
  std::ifstream in("/proc/meminfo");
  std::string name;
  long long value = -1;
  std::string unit;
  while (in >> name >> value) {
    std::getline(in, unit);
    if (name == field + ":") return value;
  }
  return -1;
}

// How many huge pages are free, for messages.
std::string huge_pages_free() {
  const long long n = meminfo_field("HugePages_Free");
  return n >= 0 ? std::to_string(n) : "?";
}

// A /proc/meminfo field in bytes ("MemTotal:  24576 kB"), 0 if absent.
std::uint64_t meminfo_bytes(const std::string& field) {
  std::ifstream in("/proc/meminfo");
  std::string name, unit;
  std::uint64_t kb = 0;
  while (in >> name >> kb) {
    std::getline(in, unit);
    if (name == field + ":") return kb * 1024;
  }
  return 0;
}

std::string gib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB",
                static_cast<double>(bytes) / (1ULL << 30));
  return buf;
}

}  // namespace

// EINVAL is kernel.shmmax (our sizes are far above shmmin); ENOSPC is
// kernel.shmall (pages of all segments) or kernel.shmmni (segment count);
// ENOMEM is the memory the kernel will commit (RAM + swap,
// vm.overcommit_memory).
Error limit_error(int err, std::uint64_t size, const std::string& name) {
  const std::string shmmax = read_proc("/proc/sys/kernel/shmmax");
  const std::string shmall = read_proc("/proc/sys/kernel/shmall");
  const std::string head = "cannot create " + std::to_string(size) +
                           "-byte segment " + name + " (" +
                           std::generic_category().message(err) + "): ";
  const std::string others = " (kernel.shmmax=" + shmmax +
                             " bytes, kernel.shmall=" + shmall + " pages)";
  if (err == EINVAL) {
    return {Errc::limit, head + "the size exceeds kernel.shmmax=" + shmmax +
                             " bytes; raise it with sysctl -w "
                             "kernel.shmmax=BYTES or use a smaller capacity"};
  }
  if (err == ENOSPC) {
    struct shm_info si {};
    const int max_id = ::shmctl(0, SHM_INFO, reinterpret_cast<shmid_ds*>(&si));
    const std::string shmmni = read_proc("/proc/sys/kernel/shmmni");
    if (max_id >= 0 && static_cast<std::uint64_t>(si.used_ids) + 1 >
                           std::strtoull(shmmni.c_str(), nullptr, 10)) {
      return {Errc::limit, head + "kernel.shmmni=" + shmmni +
                               " segments exist already; remove some "
                               "(`shm-ring ls`, `ipcs -m`) or raise it with "
                               "sysctl -w kernel.shmmni=N"};
    }
    return {Errc::limit,
            head +
                "all segments together would exceed kernel.shmall=" + shmall +
                " pages (" + std::to_string(max_id >= 0 ? si.shm_tot : 0) +
                " pages in use); remove segments, raise it with sysctl -w "
                "kernel.shmall=PAGES or use a smaller capacity"};
  }
  return {Errc::limit,
          head + "not enough memory for " + gib(size) + " (MemTotal " +
              gib(meminfo_bytes("MemTotal")) + ", MemAvailable " +
              gib(meminfo_bytes("MemAvailable")) + ", SwapTotal " +
              gib(meminfo_bytes("SwapTotal")) + ", vm.overcommit_memory=" +
              read_proc("/proc/sys/vm/overcommit_memory") +
              "); use a smaller capacity. The SysV limits are not what "
              "refused it" +
              others};
}

std::uint64_t huge_page_bytes() {
  const long long kb = meminfo_field("Hugepagesize");
  return kb > 0 ? static_cast<std::uint64_t>(kb) << 10 : 0;
}

Error huge_page_error(int err, std::uint64_t size, std::uint64_t huge,
                      const std::string& name) {
  if (err == ENOMEM || err == ENOSPC || err == EINVAL) {
    return Error{
        Errc::limit,
        "cannot create " + std::to_string(size) + "-byte huge-page segment " +
            name + ": " + std::generic_category().message(err) +
            " (/proc/sys/vm/nr_hugepages=" +
            read_proc("/proc/sys/vm/nr_hugepages") + " huge pages of " +
            std::to_string(huge >> 10) + " KiB reserved, " + huge_pages_free() +
            " free; reserve more with sysctl -w vm.nr_hugepages=N)"};
  }
  if (err == EPERM) {
    return Error{Errc::permission_denied,
                 "cannot create huge-page segment " + name +
                     ": not permitted (SHM_HUGETLB needs CAP_IPC_LOCK or "
                     "membership of the group in "
                     "/proc/sys/vm/hugetlb_shm_group)"};
  }
  return os_error(err, "cannot create huge-page segment " + name);
}

Error exists_error(const std::string& name) {
  return Error{Errc::exists, "a segment with key " + name +
                                 " already exists (attach to it, or remove "
                                 "it with `shm-ring rm --key " +
                                 name + "`)"};
}

bool shm_removed(int shmid) {
  struct shmid_ds ds {};
  if (::shmctl(shmid, IPC_STAT, &ds) != 0) return true;
  return (ds.shm_perm.mode & SHM_DEST) != 0;
}

// How many mappings of segment `shmid` this process holds: /proc/self/maps
// names each "/SYSV<key>" with the segment id as its inode.
static unsigned long own_mappings(int shmid) {
  std::ifstream maps("/proc/self/maps");
  unsigned long n = 0;
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long inode = 0;
    int path = 0;
    if (std::sscanf(line.c_str(), "%*s %*s %*s %*s %lu %n", &inode, &path) ==
            1 &&
        inode == static_cast<unsigned long>(shmid) &&
        line.compare(static_cast<std::size_t>(path), 5, "/SYSV") == 0) {
      ++n;
    }
  }
  return n;
}

bool shm_orphaned(int shmid) {
  struct shmid_ds ds {};
  if (::shmctl(shmid, IPC_STAT, &ds) != 0) {
    return errno == EINVAL || errno == EIDRM;  // gone, not unreadable
  }
  if ((ds.shm_perm.mode & SHM_DEST) == 0) return false;
  return ds.shm_nattch <= own_mappings(shmid);
}

int sem_count(int semid, key_t* key) {
  semid_ds ds{};
  if (semid < 0 || ::semctl(semid, 0, IPC_STAT, &ds) != 0) return -1;
  if (key != nullptr) *key = ds.sem_perm.__key;
  return static_cast<int>(ds.sem_nsems);
}

Result<int> create_sem_set(key_t key, unsigned mode, const std::string& name) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int id = ::semget(key, layout::kSemCount,
                            IPC_CREAT | IPC_EXCL | static_cast<int>(mode));
    if (id >= 0) return id;
    const int err = errno;
    if (err == EEXIST && attempt == 0) {
      const int old = ::semget(key, 0, 0);
      if (old >= 0 && sem_count(old) == layout::kSemCount &&
          ::semctl(old, 0, IPC_RMID) == 0) {
        continue;
      }
      return Error{Errc::exists,
                   "a semaphore set with key " + name +
                       " exists and is not a shmring ring's; remove it "
                       "with `ipcrm -S " +
                       name + "`"};
    }
    if (err == ENOSPC || err == EINVAL) {
      return Error{
          Errc::limit,
          "cannot create the ring's semaphore set: " +
              std::generic_category().message(err) +
              " (limits: kernel.sem=" + read_proc("/proc/sys/kernel/sem") +
              " = SEMMSL SEMMNS SEMOPM SEMMNI); remove unused rings "
              "(`shm-ring rm --stale`, `ipcs -s`) or raise them "
              "with sysctl -w kernel.sem=..."};
    }
    return os_error(err, "cannot create the semaphore set of " + name);
  }
  return Error{Errc::system, "cannot create the semaphore set of " + name};
}

}  // namespace shmring
