#include "bench/peers/iceoryx.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <fstream>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/popo/publisher.hpp"
#include "iceoryx_posh/popo/subscriber.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"

namespace bench {
namespace {

constexpr const char* kRoudi = "/usr/bin/iox-roudi";
constexpr const char* kRoudiSocket = "/tmp/roudi";  // iceoryx 2.0 default
constexpr const char* kRoudiLock = "/tmp/shm-bench-iceoryx.lock";

void init_runtime(const char* role) {
  // Its debug lines, and a warning for every loan that finds the memory
  // pool empty (a full subscriber queue: we retry), would flood the output.
  iox::log::LogManager::GetLogManager().SetDefaultLogLevel(
      iox::log::LogLevel::kError);
  const std::string name = unique_name(std::string("shm-bench-") + role);
  iox::runtime::PoshRuntime::initRuntime(
      iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
}

iox::popo::PublisherOptions publisher_options() {
  iox::popo::PublisherOptions o;
  o.historyCapacity = 0;
  o.subscriberTooSlowPolicy =
      iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
  return o;
}

iox::popo::SubscriberOptions subscriber_options() {
  iox::popo::SubscriberOptions o;
  o.queueCapacity = 256;  // the maximum in 2.0
  o.historyRequest = 0;
  o.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
  return o;
}

iox::capro::ServiceDescription service(const std::string& topic) {
  return {"shm-bench",
          iox::capro::IdString_t(iox::cxx::TruncateToCapacity, topic.c_str()),
          "data"};
}

// Stay registered until the subscriber has left (at most 5 s): RouDi may
// reclaim a departed publisher's samples before they are taken.
template <class P>
void wait_until_unsubscribed(P& pub) {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (pub.hasSubscribers() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

template <std::size_t S>
void publish_loop(Child& child, const std::string& topic) {
  init_runtime("pub");
  iox::popo::Publisher<Msg<S>> pub(service(topic), publisher_options());
  while (!pub.hasSubscribers()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  alignas(64) Msg<S> src = source_record<S>();
  auto send = [&](std::uint64_t seq) {
    set_seq(src, seq);
    for (;;) {
      auto loaned = pub.loan();
      if (!loaned.has_error()) {
        std::memcpy(loaned.value().get(), &src, S);
        loaned.value().publish();
        return;
      }
      cpu_relax();  // every chunk in flight: wait for the subscriber
    }
  };
  produce_loop<S>(child, send);
  send(~0ULL);  // end of stream
  wait_until_unsubscribed(pub);
}

template <std::size_t S>
void subscribe_loop(Child& child, const std::string& topic) {
  init_runtime("sub");
  iox::popo::Subscriber<Msg<S>> sub(service(topic), subscriber_options());
  alignas(64) Msg<S> dst{};
  SeqCheck check;
  const auto t0 = child.ready_and_wait();
  for (;;) {
    auto taken = sub.take();
    if (taken.has_error()) {
      cpu_relax();
      continue;
    }
    std::memcpy(&dst, taken.value().get(), S);
    keep(dst);
    if (seq_of(&dst) == ~0ULL) break;
    check(seq_of(&dst));
  }
  finish_consumer(child, t0, check, S);
}

template <std::size_t S>
RepOutcome throughput_once(const Config& config, const Placement& pl) {
  RepOutcome out;
  try {
    Roudi roudi;
    const std::string topic = unique_name("tp");
    std::vector<ChildSpec> specs = {
        {pl.producer_cpu, [&](Child& c) { publish_loop<S>(c, topic); }},
        {pl.consumer_cpu, [&](Child& c) { subscribe_loop<S>(c, topic); }},
    };
    out = stream_rates(
        run_children(specs, Mode::processes, seconds(config.duration)), S,
        "samples");
  } catch (const std::exception& ex) {
    out.error = ex.what();
  }
  return out;
}

// Ping-pong over topics "<id>-ping" and "<id>-pong".
class IceoryxPingPong {
 public:
  explicit IceoryxPingPong(const Config&) : id_(unique_name("pp")) {}
  void ping_setup() {
    init_runtime("ping");
    pub_.emplace(service(id_ + "-ping"), publisher_options());
    sub_.emplace(service(id_ + "-pong"), subscriber_options());
    while (!pub_->hasSubscribers()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  void round_trip() { exchange(0); }
  void ping_finish() {
    send(1);  // stop
    wait_until_unsubscribed(*pub_);
  }
  void pong(Child& child) {
    init_runtime("pong");
    iox::popo::Subscriber<Msg<kPingBytes>> sub(service(id_ + "-ping"),
                                               subscriber_options());
    iox::popo::Publisher<Msg<kPingBytes>> pub(service(id_ + "-pong"),
                                              publisher_options());
    while (!pub.hasSubscribers()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    child.ready_and_wait();
    alignas(64) Msg<kPingBytes> buf{};
    // Also stops once the harness said stop and no ping came for 200 ms:
    // RouDi may clean up the exited pinger's last sample (the stop message)
    // before we take it. (Stopping at the flag alone could strand a ping
    // the pinger sent just before it looked at the flag.)
    auto last = Clock::now();
    for (unsigned idle = 1;; ++idle) {
      auto taken = sub.take();
      if (taken.has_error()) {
        if ((idle & 1023) == 0 && child.stop_requested() &&
            Clock::now() - last > std::chrono::milliseconds(200)) {
          break;
        }
        cpu_relax();
        continue;
      }
      if (child.stop_requested()) last = Clock::now();
      idle = 0;
      std::memcpy(&buf, taken.value().get(), kPingBytes);
      if (seq_of(&buf) == 1) break;
      for (;;) {
        auto loaned = pub.loan();
        if (loaned.has_error()) {
          cpu_relax();
          continue;
        }
        std::memcpy(loaned.value().get(), &buf, kPingBytes);
        loaned.value().publish();
        break;
      }
    }
  }
  void after_fork() {}

 private:
  void send(std::uint64_t v) {
    alignas(64) Msg<kPingBytes> m{};
    set_seq(m, v);
    for (;;) {
      auto loaned = pub_->loan();
      if (loaned.has_error()) {
        cpu_relax();
        continue;
      }
      std::memcpy(loaned.value().get(), &m, kPingBytes);
      loaned.value().publish();
      return;
    }
  }
  void exchange(std::uint64_t v) {
    send(v);
    for (;;) {
      auto taken = sub_->take();
      if (!taken.has_error()) {
        keep(*taken.value().get());
        return;
      }
      cpu_relax();
    }
  }
  std::string id_;
  std::optional<iox::popo::Publisher<Msg<kPingBytes>>> pub_;
  std::optional<iox::popo::Subscriber<Msg<kPingBytes>>> sub_;
};

// True if some process named iox-roudi runs (ours or anyone's).
bool roudi_running() {
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return false;
  bool found = false;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/comm");
    std::string comm;
    if (std::getline(in, comm) && comm == "iox-roudi") {
      found = true;
      break;
    }
  }
  ::closedir(d);
  return found;
}

// The lock file /tmp/<runtime name>.lock and the socket /tmp/<runtime name>
// of each of our iceoryx runtimes (init_runtime) whose process has exited:
// iceoryx removes them only when the runtime is destroyed, and the children
// leave with _exit(). A runtime alive (ours or another shm-bench's) holds
// the flock on its lock file, so its files stay.
void remove_dead_runtime_locks() {
  DIR* d = ::opendir("/tmp");
  if (d == nullptr) return;
  const std::string ours = "shm-bench-";
  const std::string suffix = ".lock";
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    const std::string path = "/tmp/" + name;
    if (name.rfind(ours, 0) != 0 || name.size() <= suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0 ||
        path == kRoudiLock) {
      continue;
    }
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      ::unlink(path.substr(0, path.size() - suffix.size()).c_str());  // socket
      ::unlink(path.c_str());
    }
    ::close(fd);
  }
  ::closedir(d);
}

// What iox-roudi 2.0.3 leaves behind when it stops: its socket and lock
// files, the management segment and the user's payload segment (named after
// the user), and our runtimes' lock files. Only called while no RouDi runs.
void remove_roudi_leftovers() {
  remove_dead_runtime_locks();
  ::unlink(kRoudiSocket);
  ::unlink("/tmp/roudi.lock");
  ::unlink("/tmp/iox-unique-roudi.lock");
  ::unlink("/dev/shm/iceoryx_mgmt");
  char buf[1024];
  struct passwd pw {};
  struct passwd* res = nullptr;
  if (::getpwuid_r(::getuid(), &pw, buf, sizeof buf, &res) == 0 &&
      res != nullptr) {
    ::unlink((std::string("/dev/shm/") + pw.pw_name).c_str());
  }
}

// iox-roudi 2.0.3 is one per machine (fixed names: /tmp/roudi,
// /dev/shm/iceoryx_mgmt), so two shm-bench runs at once (two test runs, a
// test next to scripts/bench) would start, use and remove each other's. A
// machine-wide flock serialises the repetitions that run one; /tmp is
// shared with Bazel's sandbox. -1 if `wait` is false and another holds it.
int lock_roudi(bool wait) {
  const int fd = ::open(kRoudiLock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) throw std::runtime_error(errno_text(kRoudiLock));
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      const std::string why = errno_text("flock");
      ::close(fd);
      throw std::runtime_error(why);
    }
    if (!wait || Clock::now() > deadline) {
      ::close(fd);
      if (!wait) return -1;
      throw std::runtime_error(std::string("another shm-bench held ") +
                               kRoudiLock + " for 120 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return fd;
}

}  // namespace

std::string iceoryx_unavailable() {
  if (::access(kRoudi, X_OK) != 0) return "iceoryx not installed";
  // A RouDi while another shm-bench holds the lock is that run's: ours
  // waits for it. One without the lock held is someone else's.
  const int fd = lock_roudi(false);
  if (fd < 0) return "";
  const bool foreign = roudi_running();
  ::close(fd);
  if (foreign) {
    return "another iox-roudi runs on this machine; shm-bench starts (and "
           "stops) its own, so it does not share one";
  }
  return "";
}

Roudi::Roudi() : lock_fd_(lock_roudi(true)) {
  if (roudi_running()) {
    ::close(lock_fd_);
    throw std::runtime_error(
        "another iox-roudi runs on this machine; shm-bench starts (and stops) "
        "its own, so it does not share one");
  }
  remove_roudi_leftovers();  // a stale socket would look like a ready RouDi
  pid_ = ::fork();
  if (pid_ < 0) {
    const std::string why = errno_text("fork");
    ::close(lock_fd_);
    throw std::runtime_error(why);
  }
  if (pid_ == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    ::execl(kRoudi, kRoudi, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Ready once its socket exists.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  struct stat st {};
  while (::stat(kRoudiSocket, &st) != 0) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      ::close(lock_fd_);
      throw std::runtime_error("iox-roudi exited at start");
    }
    if (Clock::now() > deadline) {
      this->~Roudi();
      throw std::runtime_error("iox-roudi did not start within 10 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Roudi::~Roudi() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (::waitpid(pid_, &status, WNOHANG) != pid_) {
    if (Clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = -1;
  remove_roudi_leftovers();
  ::close(lock_fd_);  // the next RouDi, ours or another shm-bench's
  lock_fd_ = -1;
}

RepOutcome iceoryx_throughput_once(const Config& config, const Placement& pl,
                                   std::size_t size) {
  switch (size) {
    case 8:
      return throughput_once<8>(config, pl);
    case 64:
      return throughput_once<64>(config, pl);
    case 512:
      return throughput_once<512>(config, pl);
    case 4096:
      return throughput_once<4096>(config, pl);
    case 65536:
      return throughput_once<65536>(config, pl);
    default: {
      RepOutcome out;
      out.error = "size not run for iceoryx";
      return out;
    }
  }
}

RepOutcome iceoryx_latency_once(const Config& config, const Placement& pl) {
  RepOutcome out;
  try {
    Roudi roudi;
    return run_pingpong<IceoryxPingPong>(config, pl);
  } catch (const std::exception& ex) {
    out.error = ex.what();
  }
  return out;
}

}  // namespace bench
