#include "bench/harness.h"

#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <new>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace bench {

bool Config::wants(const std::string& group) const {
  return only.empty() ||
         std::find(only.begin(), only.end(), group) != only.end();
}

bool Config::wants_peer(const std::string& peer) const {
  return peers.empty() ||
         std::find(peers.begin(), peers.end(), peer) != peers.end();
}

// ---------------------------------------------------------------- statistics

double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

Stats summarize(std::vector<double> samples) {
  Stats s;
  s.samples = samples;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  s.min = samples.front();
  s.max = samples.back();
  s.median = quantile(samples, 0.5);
  s.q1 = quantile(samples, 0.25);
  s.q3 = quantile(samples, 0.75);
  double sum = 0;
  for (double v : samples) sum += v;
  s.mean = sum / static_cast<double>(samples.size());
  return s;
}

const Stats* Row::metric(const std::string& name) const {
  for (const auto& [n, s] : metrics) {
    if (n == name) return &s;
  }
  return nullptr;
}

// ------------------------------------------------------------------- report

namespace {

std::string human(const std::string& metric, double v) {
  char buf[64];
  if (metric == "records_per_s") {
    std::snprintf(buf, sizeof buf, "%.2f M/s", v / 1e6);
  } else if (metric == "bytes_per_s") {
    std::snprintf(buf, sizeof buf, "%.2f GB/s", v / 1e9);
  } else if (metric.size() > 3 && metric.substr(metric.size() - 3) == "_ns") {
    if (v >= 10000) {
      std::snprintf(buf, sizeof buf, "%.1f us", v / 1e3);
    } else {
      std::snprintf(buf, sizeof buf, "%.0f ns", v);
    }
  } else if (metric == "cpu_percent") {
    std::snprintf(buf, sizeof buf, "%.3f %%", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.4g", v);
  }
  return buf;
}

std::string read_first_line_with(const char* path, const char* prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) return "";
      auto v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

}  // namespace

void Report::add(Row row) {
  std::string line;
  char head[160];
  std::snprintf(head, sizeof head, "%-10s %-26s %7s %-15s", row.group.c_str(),
                row.peer.c_str(),
                row.size ? std::to_string(row.size).c_str() : "-",
                row.placement.c_str());
  line = head;
  if (!row.error.empty()) {
    line += " FAILED: " + row.error;
  } else if (!row.skipped.empty()) {
    line += " skipped: " + row.skipped;
  } else {
    for (const auto& [name, s] : row.metrics) {
      line += "  " + name + "=" + human(name, s.median) + " [" +
              human(name, s.min) + " .. " + human(name, s.max) + "]";
    }
  }
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  rows_.push_back(std::move(row));
}

int Report::failures() const {
  int n = 0;
  for (const auto& r : rows_) n += r.error.empty() ? 0 : 1;
  return n;
}

nlohmann::json Report::to_json(const std::vector<std::string>& argv) const {
  using nlohmann::json;
  json j;
  j["schema"] = 1;
  j["tool"] = "shm-bench";
  j["argv"] = argv;
  {
    char buf[64];
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    j["date"] = buf;
  }
  {
    json m;
    struct utsname u {};
    if (::uname(&u) == 0) {
      m["kernel"] = std::string(u.sysname) + " " + u.release;
      m["arch"] = u.machine;
    }
    m["cpu_model"] = read_first_line_with("/proc/cpuinfo", "model name");
    m["online_cpus"] = ::sysconf(_SC_NPROCESSORS_ONLN);
    m["page_size"] = ::sysconf(_SC_PAGESIZE);
    j["machine"] = m;
  }
  j["config"] = {
      {"reps", config_.reps},
      {"duration_s", config_.duration},
      {"latency_duration_s", config_.latency_duration},
      {"idle_seconds", config_.idle_seconds},
      {"smoke", config_.smoke},
      {"producer_cpu", config_.producer_cpu},
      {"consumer_cpu", config_.consumer_cpu},
      {"sizes", config_.sizes},
      {"ring_bytes", config_.ring_bytes},
      {"batch", config_.batch},
      {"e2e_bytes", config_.e2e_bytes},
  };
  json rows = json::array();
  for (const auto& r : rows_) {
    json row;
    row["id"] = r.id;
    row["group"] = r.group;
    row["peer"] = r.peer;
    row["label"] = r.label;
    row["size"] = r.size;
    row["placement"] = r.placement;
    row["note"] = r.note;
    row["producers"] = r.producers;
    row["ok"] = r.error.empty();
    if (!r.skipped.empty()) row["skipped"] = r.skipped;
    if (!r.error.empty()) row["error"] = r.error;
    json metrics = json::object();
    for (const auto& [name, s] : r.metrics) {
      metrics[name] = {{"median", s.median},  {"min", s.min}, {"max", s.max},
                       {"q1", s.q1},          {"q3", s.q3},   {"mean", s.mean},
                       {"samples", s.samples}};
    }
    row["metrics"] = metrics;
    rows.push_back(row);
  }
  j["rows"] = rows;
  return j;
}

// ---------------------------------------------------------------- placement

namespace {
cpu_set_t g_initial_mask;
bool g_have_mask = false;
}  // namespace

void init_affinity() {
  CPU_ZERO(&g_initial_mask);
  g_have_mask =
      ::sched_getaffinity(0, sizeof g_initial_mask, &g_initial_mask) == 0;
}

bool cpu_usable(int cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE) return false;
  return !g_have_mask || CPU_ISSET(cpu, &g_initial_mask);
}

bool pin_to(int cpu) {
  if (cpu < 0) {
    return !g_have_mask ||
           ::sched_setaffinity(0, sizeof g_initial_mask, &g_initial_mask) == 0;
  }
  if (!cpu_usable(cpu)) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::sched_setaffinity(0, sizeof set, &set) == 0;
}

std::vector<Placement> placements(const Config& config) {
  std::vector<Placement> out;
  if (cpu_usable(config.producer_cpu) && cpu_usable(config.consumer_cpu) &&
      config.producer_cpu != config.consumer_cpu) {
    out.push_back({"pinned", config.producer_cpu, config.consumer_cpu});
    if (config.unpinned) out.push_back({"unpinned", -1, -1});
  } else {
    // A one-CPU machine (or a mask without both CPUs): say so in the rows.
    out.push_back({"unpinned", -1, -1});
  }
  return out;
}

// ------------------------------------------------------------ shared memory

void* map_shared(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

void unmap_shared(void* p, std::size_t bytes) { ::munmap(p, bytes); }

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                std::chrono::nanoseconds timeout) {
  struct timespec ts {};
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000000000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1000000000);
  // Shared futex (no FUTEX_PRIVATE_FLAG): the waker is another process.
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT,
            expected, &ts, nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>* word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE,
            INT_MAX, nullptr, nullptr, 0);
}

// ------------------------------------------------------------------- runner

void ChildResult::fail(const std::string& why) {
  if (failed()) return;  // keep the first reason
  std::snprintf(message, sizeof message, "%s", why.c_str());
}

Clock::time_point Child::ready_and_wait() {
  // seq_cst: pairs with the parent's load while it waits for everyone.
  control_->ready.fetch_add(1, std::memory_order_seq_cst);
  // acquire: pairs with the parent's release store of go; the futex sleeps
  // instead of spinning so the parent always finds a CPU to start the run.
  while (control_->go.load(std::memory_order_acquire) == 0) {
    futex_wait(&control_->go, 0, std::chrono::milliseconds(100));
  }
  return Clock::now();
}

std::chrono::nanoseconds seconds(double s) {
  return std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
}

namespace {

std::int64_t rusage_ns(const struct rusage& ru) {
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

void run_body(const ChildSpec& spec, Child& child) {
  if (spec.cpu >= 0 && !pin_to(spec.cpu)) {
    child.result().fail("cannot pin to CPU " + std::to_string(spec.cpu));
    child.ready_and_wait();
    return;
  }
  try {
    spec.body(child);
  } catch (const std::exception& ex) {
    child.result().fail(std::string("exception: ") + ex.what());
  }
}

}  // namespace

RunResult run_children(const std::vector<ChildSpec>& specs, Mode mode,
                       std::chrono::nanoseconds duration,
                       const std::function<void()>& after_fork,
                       std::chrono::seconds grace) {
  RunResult out;
  if (specs.size() > static_cast<std::size_t>(kMaxChildren)) {
    out.error = "too many children";
    return out;
  }
  SharedObject<Control> control;
  const auto n = static_cast<std::uint32_t>(specs.size());

  auto start_and_stop = [&](auto any_exited) -> std::string {
    // Everyone attached and waiting, or somebody failed set-up.
    const auto setup_deadline = Clock::now() + std::chrono::seconds(30);
    while (control->ready.load(std::memory_order_seq_cst) < n) {
      if (any_exited()) break;
      if (Clock::now() > setup_deadline) return "children not ready in 30 s";
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    // release: pairs with the children's acquire load in ready_and_wait().
    control->go.store(1, std::memory_order_release);
    futex_wake(&control->go);
    std::this_thread::sleep_for(duration);
    // relaxed: a flag polled by the children.
    control->stop.store(1, std::memory_order_relaxed);
    return "";
  };

  if (mode == Mode::threads) {
    std::vector<std::thread> threads;
    threads.reserve(specs.size());
    for (std::uint32_t i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        Child child(control.get(), static_cast<int>(i));
        run_body(specs[i], child);
      });
    }
    out.error = start_and_stop([] { return false; });
    for (auto& t : threads) t.join();
  } else {
    std::fflush(nullptr);
    std::vector<pid_t> pids;
    for (std::uint32_t i = 0; i < n; ++i) {
      const pid_t pid = ::fork();
      if (pid < 0) {
        out.error = errno_text("fork");
        break;
      }
      if (pid == 0) {
        Child child(control.get(), static_cast<int>(i));
        run_body(specs[i], child);
        ::_exit(child.result().failed() ? 1 : 0);
      }
      pids.push_back(pid);
    }
    if (after_fork) after_fork();
    std::vector<int> statuses(pids.size(), 0);
    std::vector<bool> done(pids.size(), false);
    out.child_cpu_ns.assign(pids.size(), 0);
    auto reap = [&]() {
      bool any = false;
      for (std::size_t i = 0; i < pids.size(); ++i) {
        if (done[i]) continue;
        struct rusage ru {};
        if (::wait4(pids[i], &statuses[i], WNOHANG, &ru) == pids[i]) {
          done[i] = true;
          out.child_cpu_ns[i] = rusage_ns(ru);
          any = true;
        }
      }
      return any;
    };
    if (out.error.empty() && pids.size() == n) {
      bool exited_early = false;
      out.error = start_and_stop([&] {
        exited_early = exited_early || reap();
        return exited_early;
      });
    } else {
      control->go.store(1, std::memory_order_release);
      futex_wake(&control->go);
      control->stop.store(1, std::memory_order_relaxed);
    }
    const auto deadline = Clock::now() + grace;
    for (;;) {
      reap();
      if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) {
        break;
      }
      if (Clock::now() > deadline) {
        for (std::size_t i = 0; i < pids.size(); ++i) {
          if (!done[i]) ::kill(pids[i], SIGKILL);
        }
        for (std::size_t i = 0; i < pids.size(); ++i) {
          if (!done[i]) ::waitpid(pids[i], &statuses[i], 0), done[i] = true;
        }
        if (out.error.empty()) {
          out.error = "children still running " +
                      std::to_string(grace.count()) + " s after stop: killed";
        }
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (std::size_t i = 0; i < pids.size() && out.error.empty(); ++i) {
      if (WIFSIGNALED(statuses[i])) {
        out.error = "child " + std::to_string(i) + " killed by signal " +
                    std::to_string(WTERMSIG(statuses[i]));
      }
    }
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    out.children.push_back(control->result[i]);
    if (out.error.empty() && control->result[i].failed()) {
      out.error = control->result[i].message;
    }
  }
  return out;
}

RepOutcome stream_rates(const RunResult& run, std::size_t record_bytes,
                        const std::string& noun) {
  RepOutcome out;
  if (!run.error.empty()) {
    out.error = run.error;
    return out;
  }
  if (run.children.size() < 2) {
    out.error = "no producer or no consumer";
    return out;
  }
  const ChildResult& cons = run.children.back();
  std::uint64_t sent = 0;
  for (std::size_t i = 0; i + 1 < run.children.size(); ++i) {
    sent += run.children[i].count;
  }
  if (cons.errors != 0) {
    out.error = std::to_string(cons.errors) + " " + noun + " out of order";
  } else if (cons.count != sent) {
    out.error = "sent " + std::to_string(sent) + " " + noun + ", received " +
                std::to_string(cons.count);
  } else if (cons.ns <= 0 || cons.count == 0) {
    out.error = "nothing moved";
  } else {
    const double secs = static_cast<double>(cons.ns) / 1e9;
    out.values["records_per_s"] = static_cast<double>(cons.count) / secs;
    out.values["bytes_per_s"] = static_cast<double>(cons.count) *
                                static_cast<double>(record_bytes) / secs;
  }
  return out;
}

void run_cells(const Config& config, std::vector<Cell>& cells, Report& report) {
  // --peers: the other rows are neither run nor reported.
  cells.erase(std::remove_if(cells.begin(), cells.end(),
                             [&](const Cell& c) {
                               return !config.wants_peer(c.row.peer);
                             }),
              cells.end());
  std::vector<std::map<std::string, std::vector<double>>> values(cells.size());
  for (int rep = 0; rep < config.reps; ++rep) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      Cell& c = cells[i];
      if (!c.row.error.empty() || !c.row.skipped.empty()) continue;
      if (config.verbose) {
        std::fprintf(stderr, "  %s rep %d/%d\n", c.row.id.c_str(), rep + 1,
                     config.reps);
      }
      RepOutcome o = c.once();
      if (!o.error.empty()) {
        c.row.error = o.error;
        continue;
      }
      for (const auto& name : c.metric_names) {
        const auto it = o.values.find(name);
        if (it != o.values.end()) values[i][name].push_back(it->second);
      }
    }
  }
  for (std::size_t i = 0; i < cells.size(); ++i) {
    Cell& c = cells[i];
    for (const auto& name : c.metric_names) {
      auto& v = values[i][name];
      if (!v.empty()) c.row.metrics.emplace_back(name, summarize(v));
    }
    if (c.row.error.empty() && c.row.skipped.empty() && c.row.metrics.empty()) {
      c.row.error = "no samples";
    }
    report.add(std::move(c.row));
  }
}

std::string errno_text(const char* what) {
  // system_category().message is strerror without its shared buffer.
  return std::string(what) + ": " + std::system_category().message(errno);
}

std::string unique_name(const std::string& stem) {
  static int counter = 0;
  return stem + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(++counter);
}

}  // namespace bench
