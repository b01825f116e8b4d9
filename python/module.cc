// The Python module `shmring` (docs/python.md), on the public C++ API.
//
// Blocking calls release the GIL and wait in slices of kSlice, taking the
// GIL back between slices to run Python's signal handlers: Ctrl-C raises
// KeyboardInterrupt within a slice. Zero-copy views (reserve(), iteration)
// are memoryviews on the ring; they are released (made unusable) when the
// reservation is committed or the next record is taken, so Python code can
// never touch ring memory it no longer owns.
//
// Kinds: Producer writes spsc, mpsc and broadcast rings; Consumer reads
// spsc and mpsc rings, Subscriber broadcast rings (both records, both
// through the same reader below); QueueWriter/QueueReader move the
// fixed-size elements of slots rings through the C++ ByteQueueWriter /
// ByteQueueReader (QueueWriter<T> / QueueReader<T>'s data path, of any
// element size).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // std::optional arguments

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>

#include "ring/shmring.h"
#include "ring/version.h"

namespace py = pybind11;

namespace shmring::python {
namespace {

using Clock = std::chrono::steady_clock;

// Longest stretch without the GIL in a blocking call.
constexpr std::chrono::milliseconds kSlice{50};

// ---- Exceptions: shmring.Error and one subclass per code.

PyObject* g_error = nullptr;
// One class per Status and per Errc (Status::removed and Errc::removed
// share RemovedError): the arrays are indexed by the enums, whose last
// values are removed and system.
PyObject* g_status_errors[static_cast<int>(Status::removed) + 1] = {};
PyObject* g_errc_errors[static_cast<int>(Errc::system) + 1] = {};

[[noreturn]] void raise(PyObject* type, const std::string& message) {
  PyErr_SetString(type, message.c_str());
  throw py::error_already_set();
}

[[noreturn]] void raise_error(const Error& e) {
  raise(g_errc_errors[static_cast<int>(e.code)], e.message);
}

[[noreturn]] void raise_status(Status s, const std::string& what) {
  // interrupted: a signal ended the wait; let Python's handler speak first
  // (KeyboardInterrupt for SIGINT).
  if (s == Status::interrupted && PyErr_CheckSignals() != 0) {
    throw py::error_already_set();
  }
  raise(g_status_errors[static_cast<int>(s)], what + ": " + to_string(s));
}

PyObject* make_error(py::module_& m, const char* name, PyObject* builtin,
                     const char* code, const char* doc) {
  const std::string qualified = std::string("shmring.") + name;
  PyObject* bases = builtin == nullptr ? PyTuple_Pack(1, g_error)
                                       : PyTuple_Pack(2, g_error, builtin);
  PyObject* dict = PyDict_New();
  PyObject* code_str = PyUnicode_FromString(code);
  PyDict_SetItemString(dict, "code", code_str);
  Py_DECREF(code_str);
  PyObject* type =
      PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, dict);
  Py_DECREF(bases);
  Py_DECREF(dict);
  if (type == nullptr) throw py::error_already_set();
  m.attr(name) = py::handle(type);  // the module keeps a reference
  return type;
}

void add_exceptions(py::module_& m) {
  g_error = PyErr_NewExceptionWithDoc(
      "shmring.Error",
      "Base class of every shmring error; `code` names the library's code.",
      nullptr, nullptr);
  if (g_error == nullptr) throw py::error_already_set();
  m.attr("Error") = py::handle(g_error);

  auto status = [&](Status s, const char* name, PyObject* builtin,
                    const char* code, const char* doc) {
    g_status_errors[static_cast<int>(s)] =
        make_error(m, name, builtin, code, doc);
  };
  status(Status::ok, "OkError", nullptr, "ok", "Never raised.");
  status(Status::would_block, "WouldBlockError", PyExc_BlockingIOError,
         "would_block", "timeout=0 and the ring is full (or empty).");
  status(Status::timed_out, "TimedOutError", PyExc_TimeoutError, "timed_out",
         "The timeout expired.");
  status(Status::too_large, "TooLargeError", PyExc_ValueError, "too_large",
         "The record can never fit this ring.");
  status(Status::closed, "ClosedError", nullptr, "closed",
         "The handle is closed.");
  status(Status::peer_dead, "PeerDeadError", nullptr, "peer_dead",
         "Producer: the consumer is gone. Consumer: the producer died.");
  status(Status::interrupted, "InterruptedError", PyExc_InterruptedError,
         "interrupted", "shmring.interrupt() was called.");
  status(Status::corrupt, "CorruptError", nullptr, "corrupt",
         "The segment holds values no correct peer writes.");
  status(Status::overrun, "OverrunError", nullptr, "overrun",
         "Subscriber of a drop-slow ring: the producer lapped it; "
         "lost_records and lost_bytes say how much was lost, the next read "
         "delivers the oldest intact record.");

  auto errc = [&](Errc e, const char* name, PyObject* builtin,
                  const char* code) {
    g_errc_errors[static_cast<int>(e)] =
        make_error(m, name, builtin, code, "A ring set-up error.");
  };
  errc(Errc::not_found, "NotFoundError", PyExc_FileNotFoundError, "not_found");
  errc(Errc::exists, "ExistsError", PyExc_FileExistsError, "exists");
  errc(Errc::permission_denied, "PermissionDeniedError", PyExc_PermissionError,
       "permission_denied");
  errc(Errc::invalid_argument, "InvalidArgumentError", PyExc_ValueError,
       "invalid_argument");
  errc(Errc::not_shmring, "NotShmringError", nullptr, "not_shmring");
  errc(Errc::version_mismatch, "VersionMismatchError", nullptr,
       "version_mismatch");
  errc(Errc::wrong_kind, "WrongKindError", nullptr, "wrong_kind");
  errc(Errc::size_mismatch, "SizeMismatchError", nullptr, "size_mismatch");
  errc(Errc::not_ready, "NotReadyError", nullptr, "not_ready");
  errc(Errc::role_taken, "RoleTakenError", nullptr, "role_taken");
  errc(Errc::too_many_producers, "TooManyProducersError", nullptr,
       "too_many_producers");
  errc(Errc::removed, "RemovedError", nullptr, "removed");
  errc(Errc::limit, "LimitError", nullptr, "limit");
  errc(Errc::system, "SystemCallError", PyExc_OSError, "system");
  for (PyObject* e : g_errc_errors) {
    if (e == nullptr) throw std::logic_error("an Errc without a class");
  }
  // A reader waiting for a producer on a removed ring: the same error as
  // attaching to one.
  g_status_errors[static_cast<int>(Status::removed)] =
      g_errc_errors[static_cast<int>(Errc::removed)];
  for (PyObject* e : g_status_errors) {
    if (e == nullptr) throw std::logic_error("a Status without a class");
  }
}

// ---- Helpers.

// The Python timeout argument: None: forever; seconds otherwise (0: try
// once). The one place it is converted and checked.
Timeout timeout_of(const std::optional<double>& seconds) {
  if (!seconds) return kForever;
  if (*seconds < 0 || *seconds != *seconds) {
    raise(PyExc_ValueError, "timeout must be None or a number >= 0");
  }
  if (*seconds > 1e9) return kForever;
  return std::chrono::duration_cast<Timeout>(
      std::chrono::duration<double>(*seconds));
}

Status status_of(Status s) { return s; }
template <class R>
Status status_of(const R& r) {
  return r.status;
}

// The blocking half of a call whose try_* answered would_block: with
// timeout=0 it raises WouldBlockError (`what` names the call); otherwise
// it runs `attempt(slice)` (the blocking call) without the GIL, slice by
// slice, until it answers anything but timed_out or the timeout passes;
// Python's signal handlers run between slices, with the GIL.
template <class R, class Attempt>
R block(const std::optional<double>& seconds, const char* what,
        Attempt attempt) {
  const Timeout timeout = timeout_of(seconds);
  if (timeout == Timeout::zero()) raise_status(Status::would_block, what);
  const auto deadline = Deadline::after(timeout);
  for (;;) {
    const auto left = deadline.left(Clock::now());
    const Timeout slice = std::min<Timeout>(left, kSlice);
    R r;
    {
      py::gil_scoped_release unlocked;
      r = attempt(slice);
    }
    if (status_of(r) != Status::timed_out) return r;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (deadline.passed(Clock::now())) return r;
  }
}

// A handle is used by one thread at a time; with the GIL released another
// Python thread could enter. This refuses it instead of corrupting state.
class InUse {
 public:
  explicit InUse(bool& flag) : flag_(flag) {
    if (flag_) {
      raise(PyExc_RuntimeError,
            "this shmring handle is in use by another thread");
    }
    flag_ = true;
  }
  ~InUse() { flag_ = false; }
  InUse(const InUse&) = delete;
  InUse& operator=(const InUse&) = delete;

 private:
  bool& flag_;
};

// ---- Zero-copy views. A memoryview on ring memory must die with the
// reservation or record it shows: Python code must never reach bytes a peer
// may be overwriting, nor a mapping that is gone. memoryview slices and
// copies of a memoryview share its buffer without telling it, so the views
// are exported by an object of our own (RingMemory) that counts every
// buffer taken from it; a view is retired only when that count is zero.

struct RingMemory {
  PyObject_HEAD void* data;
  Py_ssize_t size;
  int readonly;
  int retired;                        // no new buffers
  Py_ssize_t exports;                 // buffers taken and not yet released
  std::shared_ptr<Segment>* segment;  // keeps the mapping while exported
};

int ring_memory_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* m = reinterpret_cast<RingMemory*>(self);
  if (m->retired) {
    PyErr_SetString(PyExc_BufferError,
                    "this shmring record or reservation is no longer valid");
    view->obj = nullptr;
    return -1;
  }
  if (PyBuffer_FillInfo(view, self, m->data, m->size, m->readonly, flags) < 0) {
    return -1;
  }
  ++m->exports;
  return 0;
}

void ring_memory_releasebuffer(PyObject* self, Py_buffer*) {
  --reinterpret_cast<RingMemory*>(self)->exports;
}

void ring_memory_dealloc(PyObject* self) {
  auto* m = reinterpret_cast<RingMemory*>(self);
  delete m->segment;
  Py_TYPE(self)->tp_free(self);
}

PyBufferProcs g_ring_memory_buffer = {ring_memory_getbuffer,
                                      ring_memory_releasebuffer};

#pragma GCC diagnostic push  // CPython's type objects are aggregates with
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"  // ~50 fields
PyTypeObject g_ring_memory_type = [] {
  PyTypeObject t{PyVarObject_HEAD_INIT(nullptr, 0)};
  t.tp_name = "shmring._RingMemory";
  t.tp_basicsize = sizeof(RingMemory);
  t.tp_dealloc = ring_memory_dealloc;
  t.tp_as_buffer = &g_ring_memory_buffer;
  t.tp_flags = Py_TPFLAGS_DEFAULT;
  t.tp_doc = "Ring memory behind a shmring memoryview.";
  return t;
}();
#pragma GCC diagnostic pop

// A view (the memoryview handed out) and the object that exports it.
struct View {
  py::object owner;  // RingMemory
  py::object view = py::none();

  bool open() const { return !view.is_none(); }

  py::object make(const std::shared_ptr<Segment>& segment, void* data,
                  std::size_t size, bool readonly) {
    PyObject* o = PyType_GenericAlloc(&g_ring_memory_type, 0);
    if (o == nullptr) throw py::error_already_set();
    auto* m = reinterpret_cast<RingMemory*>(o);
    m->data = data;
    m->size = static_cast<Py_ssize_t>(size);
    m->readonly = readonly ? 1 : 0;
    m->retired = 0;
    m->exports = 0;
    m->segment = new std::shared_ptr<Segment>(segment);
    owner = py::reinterpret_steal<py::object>(o);
    PyObject* mv = PyMemoryView_FromObject(o);
    if (mv == nullptr) throw py::error_already_set();
    view = py::reinterpret_steal<py::object>(mv);
    return view;
  }

  // Retires the view. BufferError (and nothing retired) while anything
  // else still holds a buffer from it, unless `force` (closing: then the
  // exports keep the mapping alive, but show stale bytes).
  void retire(bool force = false) {
    if (!open()) return;
    auto* m = reinterpret_cast<RingMemory*>(owner.ptr());
    view.attr("release")();  // ours; slices of it keep their own export
    if (m->exports > 0 && !force) {
      // Hand out a fresh view on the same memory: ours is released.
      PyObject* mv = PyMemoryView_FromObject(owner.ptr());
      if (mv == nullptr) throw py::error_already_set();
      view = py::reinterpret_steal<py::object>(mv);
      raise(PyExc_BufferError,
            "a shmring memoryview still has exports (a slice, a numpy "
            "array...): delete them, or copy the data, before the next "
            "record, the commit or the abort");
    }
    m->retired = 1;
    owner = py::object();
    view = py::none();
  }
};

key_t key_of(const py::object& key, const py::object& proj) {
  if (py::isinstance<py::int_>(key)) {
    const long long k = key.cast<long long>();
    if (k < INT32_MIN || k > UINT32_MAX) {
      raise(PyExc_ValueError, "key must fit in 32 bits");
    }
    return static_cast<key_t>(static_cast<std::uint32_t>(k));
  }
  // A path: ftok(path, proj), like the tools' --path/--proj.
  py::object fs = py::module_::import("os").attr("fsdecode")(key);
  int p = 0;
  if (py::isinstance<py::str>(proj)) {
    const std::string s = proj.cast<std::string>();
    if (s.size() != 1) raise(PyExc_ValueError, "proj must be one character");
    p = static_cast<unsigned char>(s[0]);
  } else {
    p = proj.cast<int>();
  }
  auto k = key_from_path(fs.cast<std::string>(), p);
  if (!k) raise_error(k.error());
  return *k;
}

// ---- Ring, Producer, Consumer.

struct PyProducer {
  std::shared_ptr<Segment> segment;
  std::optional<Producer> p;
  View view;  // the open reservation, if any
  std::size_t reserved = 0;
  bool busy = false;

  Producer& get() {
    if (!p)
      raise(g_status_errors[static_cast<int>(Status::closed)],
            "the producer is closed");
    return *p;
  }

  void write(const py::object& data, std::optional<double> timeout,
             std::uint16_t type) {
    InUse in_use(busy);
    Producer& prod = get();
    // PyBUF_SIMPLE: contiguous bytes or a TypeError/BufferError; pinned
    // (and kept alive) until released, also while the GIL is released.
    Py_buffer buf;
    if (PyObject_GetBuffer(data.ptr(), &buf, PyBUF_SIMPLE) != 0) {
      throw py::error_already_set();
    }
    struct Release {
      Py_buffer* b;
      ~Release() { PyBuffer_Release(b); }
    } release{&buf};
    const std::span<const std::byte> bytes(
        static_cast<const std::byte*>(buf.buf),
        static_cast<std::size_t>(buf.len));
    if (view.open()) {  // a write replaces (aborts) an open reservation
      view.retire();
      prod.abort();
    }
    Status s = prod.try_write(bytes, type);  // the common case: no GIL dance
    if (s == Status::would_block) {
      s = block<Status>(
          timeout, "write",
          [&](Timeout slice) { return prod.write(bytes, slice, type); });
    }
    if (s != Status::ok) raise_status(s, "write");
  }

  py::object reserve(std::size_t n, std::optional<double> timeout) {
    InUse in_use(busy);
    Producer& prod = get();
    if (view.open()) {  // a new reservation replaces (aborts) the old one
      view.retire();
      prod.abort();
    }
    Reservation r = prod.try_reserve(n);
    if (r.status == Status::would_block) {
      r = block<Reservation>(
          timeout, "reserve",
          [&](Timeout slice) { return prod.reserve(n, slice); });
    }
    if (!r) raise_status(r.status, "reserve");
    reserved = n;
    return view.make(segment, r.bytes.data(), n, false);
  }

  void commit(std::optional<std::size_t> used, std::uint16_t type) {
    InUse in_use(busy);
    Producer& prod = get();
    if (!view.open()) raise(PyExc_RuntimeError, "commit() without reserve()");
    const std::size_t n = used.value_or(reserved);
    if (n > reserved) {
      raise(PyExc_ValueError, "commit(used): used exceeds the reservation (" +
                                  std::to_string(reserved) + " bytes)");
    }
    view.retire();
    prod.commit(n, type);
  }

  void abort() {
    InUse in_use(busy);
    Producer& prod = get();
    view.retire();
    prod.abort();
  }

  void close() {
    InUse in_use(busy);
    if (!p) return;
    view.retire(true);  // an open reservation is aborted by close()
    p->close();
    p.reset();
  }
};

// A reader of records: Consumer (spsc, mpsc) or Subscriber (broadcast),
// each either the library's raw handle or a StreamReader over it (the
// tools' stream rules, ring/stream.h: attached between streams, it waits
// for the next producer). The Python classes share this.
template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

using RecordHandle =
    std::variant<std::monostate, Consumer, Subscriber, StreamReader>;

struct PyReader {
  std::shared_ptr<Segment> segment;
  RecordHandle r;
  const char* role = "consumer";  // for messages
  View view;                      // the current record from iteration
  bool holding = false;           // a peeked, unreleased record
  // What the try call of fileno()'s first settling found, not handed out
  // yet: the next record (or end of stream, overrun ...) for the next read.
  std::optional<Peeked> pending;
  bool settled = false;  // fileno() has settled the fd
  bool busy = false;

  bool open() const { return !std::holds_alternative<std::monostate>(r); }
  void check_open() {
    if (!open()) {
      raise(g_status_errors[static_cast<int>(Status::closed)],
            std::string("the ") + role + " is closed");
    }
  }
  // The handle's calls; a closed handle answers closed (the GIL may be
  // released: no Python here).
  template <class R, class F>
  R call(F f) {
    return std::visit(Overloaded{[](std::monostate&) {
                                   return R{Status::closed, {}};
                                 },
                                 [&](auto& h) { return R(f(h)); }},
                      r);
  }
  void release_handle() {
    std::visit(Overloaded{[](std::monostate&) {}, [](auto& h) { h.release(); }},
               r);
  }
  // The subscriber, if this reads a broadcast ring.
  Subscriber* subscriber() {
    if (auto* s = std::get_if<StreamReader>(&r)) return s->subscriber();
    return std::get_if<Subscriber>(&r);
  }

  void drop(bool force = false) {
    view.retire(force);
    if (holding) {
      holding = false;
      release_handle();
    }
  }

  [[noreturn]] void raise_overrun(const char* what) {
    Subscriber* s = subscriber();
    raise(g_status_errors[static_cast<int>(Status::overrun)],
          std::string(what) + ": " + to_string(Status::overrun) +
              ": the producer lapped this subscriber; lost so far: " +
              std::to_string(s ? s->lost_records() : 0) + " records, " +
              std::to_string(s ? s->lost_bytes() : 0) + " bytes");
  }

  // One blocking slice (without the GIL).
  Peeked peek_slice(Timeout slice) {
    return call<Peeked>([&](auto& h) { return h.peek(slice); });
  }

  // The next record; nullopt at end of stream.
  std::optional<Record> next_record(std::optional<double> timeout,
                                    const char* what) {
    check_open();
    drop();
    Peeked p;
    if (pending) {
      p = *pending;
      pending.reset();
    } else {
      p = call<Peeked>([](auto& h) { return h.try_peek(); });
    }
    if (p.status == Status::would_block) {
      p = block<Peeked>(
          timeout, what, [&](Timeout slice) { return peek_slice(slice); });
    }
    if (p.status == Status::closed) return std::nullopt;
    if (p.status == Status::overrun) raise_overrun(what);
    if (!p) raise_status(p.status, what);
    holding = true;
    return p.record;
  }

  py::object next() {
    InUse in_use(busy);
    auto r = next_record(std::nullopt, "next");
    if (!r) throw py::stop_iteration();
    // The ring memory is const for us: the view is read-only.
    return view.make(segment, const_cast<std::byte*>(r->data), r->size, true);
  }

  py::object read(std::optional<double> timeout) {
    InUse in_use(busy);
    for (;;) {
      auto rec = next_record(timeout, "read");
      if (!rec) return py::none();
      py::bytes out(reinterpret_cast<const char*>(rec->data), rec->size);
      // Drop-slow: the copy counts only if the producer did not overwrite
      // the record while it was copied; a torn one is dropped, and the
      // next peek reports it as an overrun.
      Subscriber* s = subscriber();
      const bool intact = s == nullptr || s->intact();
      holding = false;
      release_handle();
      if (intact) return out;
    }
  }

  void release() {
    InUse in_use(busy);
    check_open();
    drop();
  }

  int fileno() {
    check_open();
    // After the first call only the fd is looked up (select() may ask
    // while another thread blocks in read()).
    std::optional<InUse> in_use;
    if (!settled) in_use.emplace(busy);
    Result<int> fd = std::visit(
        Overloaded{[](std::monostate&) -> Result<int> {
                     return Error{Errc::invalid_argument, "closed"};
                   },
                   [](auto& h) -> Result<int> { return h.wait_fd(); }},
        r);
    if (!fd) raise_error(fd.error());
    // The library's fd starts readable; a try call that finds nothing
    // clears and arms it. One now, so that the fd is readable only when
    // something is there; what it finds is kept for the next read. Not
    // while a record is held (a peek would take the one after it).
    if (!settled && !holding && !pending) {
      settled = true;
      Peeked p = call<Peeked>([](auto& h) { return h.try_peek(); });
      if (p.status != Status::would_block) pending = p;
    }
    return *fd;
  }

  void close() {
    InUse in_use(busy);
    if (!open()) return;
    pending.reset();
    drop(true);
    // A StreamReader closes its handle when destroyed.
    std::visit(Overloaded{[](std::monostate&) {},
                          [](auto& h) {
                            if constexpr (requires { h.close(); }) h.close();
                          }},
               r);
    r.emplace<std::monostate>();
  }
};

struct PyConsumer : PyReader {};

struct PySubscriber : PyReader {
  Subscriber& get() {
    check_open();
    return *subscriber();
  }
  bool intact() {
    InUse in_use(busy);
    return get().intact();
  }
};

// ---- Fixed slots: the C++ ByteQueueWriter / ByteQueueReader (the data
// path of QueueWriter<T> / QueueReader<T>, the element size the ring's).

// The element size of a slots ring, or WrongKindError.
std::size_t element_size_of(const Segment& segment) {
  if (segment.kind() != Kind::slots) {
    raise_error(Error{Errc::wrong_kind,
                      std::string("QueueWriter/QueueReader read slots rings; "
                                  "this is a ") +
                          kind_name(segment.kind()) +
                          " ring (Producer, Consumer, Subscriber)"});
  }
  return segment.slot_size();
}

// An element's codec: bytes as they are, or a struct format's tuple.
struct ElementFormat {
  py::object st = py::none();  // struct.Struct, or None: bytes
  std::size_t size = 0;

  ElementFormat() = default;
  ElementFormat(const std::optional<std::string>& format, std::size_t n)
      : size(n) {
    if (!format) return;
    st = py::module_::import("struct").attr("Struct")(*format);
    const auto s = st.attr("size").cast<std::size_t>();
    if (s != n) {
      raise(PyExc_ValueError, "format '" + *format + "' packs " +
                                  std::to_string(s) +
                                  " bytes; this ring's elements are " +
                                  std::to_string(n) + " bytes");
    }
  }

  // The element's bytes (a bytes-like object of exactly `size` bytes).
  py::object pack(const py::object& value) const {
    if (st.is_none()) return value;
    if (!py::isinstance<py::tuple>(value)) {
      raise(PyExc_TypeError,
            "with a format, an element is a tuple of its fields (what "
            "struct.unpack returns)");
    }
    return st.attr("pack")(*value);
  }
  py::object unpack(py::bytes raw) const {
    if (st.is_none()) return raw;
    return st.attr("unpack")(raw);
  }
  py::object format() const {
    if (st.is_none()) return py::none();
    return st.attr("format");
  }
};

struct PyQueueWriter {
  std::shared_ptr<Segment> segment;
  std::optional<ByteQueueWriter> w;
  ElementFormat fmt;
  bool busy = false;

  ByteQueueWriter& get() {
    if (!w) {
      raise(g_status_errors[static_cast<int>(Status::closed)],
            "the queue writer is closed");
    }
    return *w;
  }

  void push(const py::object& value, std::optional<double> timeout) {
    InUse in_use(busy);
    ByteQueueWriter& qw = get();
    const py::object data = fmt.pack(value);
    Py_buffer buf;
    if (PyObject_GetBuffer(data.ptr(), &buf, PyBUF_SIMPLE) != 0) {
      throw py::error_already_set();
    }
    struct Release {
      Py_buffer* b;
      ~Release() { PyBuffer_Release(b); }
    } release{&buf};
    if (static_cast<std::size_t>(buf.len) != fmt.size) {
      raise(PyExc_ValueError, "push: an element of this ring is " +
                                  std::to_string(fmt.size) + " bytes, got " +
                                  std::to_string(buf.len));
    }
    const std::span<const std::byte> bytes(
        static_cast<const std::byte*>(buf.buf), fmt.size);
    Status s = qw.try_push(bytes);
    if (s == Status::would_block) {
      s = block<Status>(
          timeout, "push", [&](Timeout slice) { return qw.push(bytes, slice); });
    }
    if (s != Status::ok) raise_status(s, "push");
  }

  void close() {
    InUse in_use(busy);
    if (!w) return;
    w->close();
    w.reset();
  }
};

struct PyQueueReader {
  std::shared_ptr<Segment> segment;
  std::optional<ByteQueueReader> r;
  ElementFormat fmt;
  bool busy = false;
  // What fileno()'s settling try_pop found (as PyReader::pending).
  std::optional<std::pair<Status, py::bytes>> pending;
  bool settled = false;

  ByteQueueReader& get() {
    if (!r) {
      raise(g_status_errors[static_cast<int>(Status::closed)],
            "the queue reader is closed");
    }
    return *r;
  }

  // A try_pop into a new bytes object of the element size.
  std::pair<Status, py::bytes> try_pop_bytes() {
    PyObject* raw = PyBytes_FromStringAndSize(nullptr, fmt.size);
    if (raw == nullptr) throw py::error_already_set();
    auto out = py::reinterpret_steal<py::bytes>(raw);
    const Status s = get().try_pop(
        {reinterpret_cast<std::byte*>(PyBytes_AS_STRING(raw)), fmt.size});
    return {s, std::move(out)};
  }

  // The next element; None at end of stream.
  py::object pop(std::optional<double> timeout, const char* what) {
    InUse in_use(busy);
    ByteQueueReader& qr = get();
    auto [s, out] =
        pending ? *std::exchange(pending, std::nullopt) : try_pop_bytes();
    const std::span<std::byte> at(
        reinterpret_cast<std::byte*>(PyBytes_AS_STRING(out.ptr())), fmt.size);
    if (s == Status::would_block) {
      s = block<Status>(
          timeout, what, [&](Timeout slice) { return qr.pop(at, slice); });
    }
    if (s == Status::closed) return py::none();
    if (s != Status::ok) raise_status(s, what);
    return fmt.unpack(std::move(out));
  }

  py::object next() {
    py::object v = pop(std::nullopt, "next");
    if (v.is_none()) throw py::stop_iteration();
    return v;
  }

  int fileno() {
    std::optional<InUse> in_use;  // as PyReader::fileno
    if (!settled) in_use.emplace(busy);
    auto fd = get().wait_fd();
    if (!fd) raise_error(fd.error());
    // Settled as PyReader::fileno does.
    if (!settled && !pending) {
      settled = true;
      auto p = try_pop_bytes();
      if (p.first != Status::would_block) pending = std::move(p);
    }
    return *fd;
  }

  void close() {
    InUse in_use(busy);
    if (!r) return;
    pending.reset();
    r->close();
    r.reset();
  }
};

struct PyRing {
  std::shared_ptr<Segment> segment;

  Segment& get() {
    if (!segment)
      raise(g_status_errors[static_cast<int>(Status::closed)],
            "the ring is closed");
    return *segment;
  }

  std::unique_ptr<PyProducer> producer(bool wait_for_consumer) {
    ProducerOptions o;
    o.wait_for_consumer = wait_for_consumer;
    auto h = std::make_unique<PyProducer>();
    h->segment = segment;
    auto p = Producer::attach(get(), o);
    if (!p) raise_error(p.error());
    h->p.emplace(std::move(p).value());
    return h;
  }

  // Through a StreamReader unless `raw` (or the ring is of another kind:
  // then the raw attach refuses it with the library's message).
  template <class Raw>
  void attach_reader(PyReader& h, bool raw, Kind kind) {
    Segment& seg = get();
    if (!raw && (seg.kind() == Kind::broadcast) == (kind == Kind::broadcast)) {
      auto s = StreamReader::attach(seg);
      if (!s) raise_error(s.error());
      h.r.emplace<StreamReader>(std::move(s).value());
      return;
    }
    auto c = Raw::attach(seg);
    if (!c) raise_error(c.error());
    h.r.emplace<Raw>(std::move(c).value());
  }

  std::unique_ptr<PyConsumer> consumer(bool raw) {
    auto h = std::make_unique<PyConsumer>();
    h->segment = segment;
    attach_reader<Consumer>(*h, raw, Kind::spsc);
    return h;
  }

  std::unique_ptr<PySubscriber> subscriber(bool raw) {
    auto h = std::make_unique<PySubscriber>();
    h->segment = segment;
    h->role = "subscriber";
    attach_reader<Subscriber>(*h, raw, Kind::broadcast);
    return h;
  }

  std::unique_ptr<PyQueueWriter> queue_writer(
      const std::optional<std::string>& format, bool wait_for_consumer) {
    const std::size_t n = element_size_of(get());
    ProducerOptions o;
    o.wait_for_consumer = wait_for_consumer;
    auto h = std::make_unique<PyQueueWriter>();
    h->segment = segment;
    h->fmt = ElementFormat(format, n);
    auto w = ByteQueueWriter::attach(get(), o);
    if (!w) raise_error(w.error());
    h->w.emplace(std::move(w).value());
    return h;
  }

  std::unique_ptr<PyQueueReader> queue_reader(
      const std::optional<std::string>& format) {
    const std::size_t n = element_size_of(get());
    auto h = std::make_unique<PyQueueReader>();
    h->segment = segment;
    h->fmt = ElementFormat(format, n);
    auto r = ByteQueueReader::attach(get());
    if (!r) raise_error(r.error());
    h->r.emplace(std::move(r).value());
    return h;
  }

  void remove() {
    auto r = get().remove();
    if (!r) raise_error(r.error());
  }
};

std::unique_ptr<PyRing> open_ring(
    const py::object& key, py::object create,
    const std::optional<std::string>& kind, std::uint64_t capacity,
    const std::string& wait, unsigned mode, std::uint32_t max_producers,
    const py::object& proj, const py::object& slot_size,
    std::uint32_t max_consumers, const std::string& overrun) {
  const key_t k = key_of(key, proj);
  RingOptions o;
  o.capacity = capacity;
  o.mode = mode;
  o.max_producers = max_producers;
  o.max_consumers = max_consumers;
  std::optional<Kind> expect;
  if (kind) {
    if (*kind == "spsc") {
      o.kind = Kind::spsc;
    } else if (*kind == "mpsc") {
      o.kind = Kind::mpsc;
    } else if (*kind == "broadcast") {
      o.kind = Kind::broadcast;
    } else if (*kind == "slots") {
      o.kind = Kind::slots;
    } else {
      raise(PyExc_ValueError,
            "kind must be 'spsc', 'mpsc', 'broadcast', 'slots' or None");
    }
    expect = o.kind;
  }
  if (!slot_size.is_none()) {
    // An element size in bytes, or a struct format whose size it is.
    if (py::isinstance<py::str>(slot_size)) {
      o.slot_size = py::module_::import("struct")
                        .attr("calcsize")(slot_size)
                        .cast<std::uint32_t>();
    } else {
      o.slot_size = slot_size.cast<std::uint32_t>();
    }
  }
  if (overrun == "wait") {
    o.overrun = Overrun::wait;
  } else if (overrun == "drop-slow") {
    o.overrun = Overrun::drop_slow;
  } else {
    raise(PyExc_ValueError, "overrun must be 'wait' or 'drop-slow'");
  }
  if (wait == "futex") {
    o.wait = WaitStrategy::futex;
  } else if (wait == "semaphore") {
    o.wait = WaitStrategy::semaphore;
  } else if (wait == "spin") {
    o.wait = WaitStrategy::spin;
  } else {
    raise(PyExc_ValueError, "wait must be 'futex', 'semaphore' or 'spin'");
  }
  std::optional<Result<Segment>> seg;
  if (py::isinstance<py::str>(create)) {
    if (create.cast<std::string>() != "exclusive") {
      raise(PyExc_ValueError, "create must be False, True or 'exclusive'");
    }
    seg.emplace(Segment::create(k, o));
  } else if (py::bool_(create)) {
    seg.emplace(Segment::attach_or_create(k, o));
  } else {
    seg.emplace(Segment::attach(k, expect));
  }
  if (!*seg) raise_error(seg->error());
  auto ring = std::make_unique<PyRing>();
  ring->segment = std::make_shared<Segment>(std::move(*seg).value());
  return ring;
}

// The calls Consumer and Subscriber share.
template <class T>
void bind_reader(py::class_<T>& c) {
  c.def("__iter__", [](py::object self) { return self; })
      .def("__next__", &T::next)
      .def("read", &T::read, py::arg("timeout") = py::none(),
           "The next record as bytes; None at end of stream. timeout=0 "
           "raises WouldBlockError when the ring is empty.")
      .def("release", &T::release,
           "Give the current record back to producers (its memoryview "
           "becomes unusable); iteration does it for you.")
      .def("fileno", &T::fileno,
           "A file descriptor readable while a record (or end of stream) "
           "waits: for select, selectors, asyncio's add_reader. Drain with "
           "read(timeout=0) until WouldBlockError.")
      .def("close", &T::close)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](T& c, py::args) {
        c.close();
        return false;
      });
}

}  // namespace
}  // namespace shmring::python

PYBIND11_MODULE(shmring, m) {
  using namespace shmring::python;
  using shmring::python::PyConsumer;
  using shmring::python::PyProducer;
  using shmring::python::PyQueueReader;
  using shmring::python::PyQueueWriter;
  using shmring::python::PyRing;
  using shmring::python::PySubscriber;
  m.doc() =
      "shmring: a lock-free ring of records in a System V shared-memory "
      "segment. See docs/python.md.";
  m.attr("__version__") = SHMRING_VERSION;  // ring/version.h
  add_exceptions(m);
  if (PyType_Ready(&g_ring_memory_type) < 0) throw py::error_already_set();
  // The pure-Python submodules (shmring.aio) are files in a shmring/
  // directory. Installed by pip, this module is that package's __init__;
  // built alone (Bazel, CMake) it is a single file, made a package here
  // whose submodules are found in the shmring/ directories on sys.path
  // (the import system sets __path__ afterwards only if none is set).
  {
    py::module_ os_path = py::module_::import("os.path");
    py::list path;
    for (py::handle dir : py::module_::import("sys").attr("path")) {
      if (!py::isinstance<py::str>(dir)) continue;
      py::object sub =
          os_path.attr("abspath")(os_path.attr("join")(dir, "shmring"));
      if (os_path.attr("isdir")(sub).cast<bool>() && !path.contains(sub)) {
        path.append(sub);
      }
    }
    m.attr("__path__") = path;
  }

  py::class_<PyRing>(m, "Ring", "A ring; open() makes one.")
      .def("producer", &PyRing::producer, py::kw_only(),
           py::arg("wait_for_consumer") = false,
           "Attach as a producer (a context manager).")
      .def("consumer", &PyRing::consumer, py::kw_only(), py::arg("raw") = false,
           "Attach as the consumer of an spsc or mpsc ring (a context "
           "manager, iterable). It follows the tools' stream rules: "
           "attached after a stream was read to its end, it waits for the "
           "next producer. raw=True: the library's Consumer, which reports "
           "that old end of stream again.")
      .def("subscriber", &PyRing::subscriber, py::kw_only(),
           py::arg("raw") = false,
           "Attach as one of a broadcast ring's readers (a context manager, "
           "iterable); stream rules and raw as consumer().")
      .def("queue_writer", &PyRing::queue_writer,
           py::arg("format") = py::none(), py::kw_only(),
           py::arg("wait_for_consumer") = false,
           "Attach as the writer of a slots ring; elements are bytes, or "
           "tuples packed with a struct format of the ring's element size.")
      .def("queue_reader", &PyRing::queue_reader,
           py::arg("format") = py::none(),
           "Attach as the reader of a slots ring (elements as queue_writer).")
      .def("remove", &PyRing::remove,
           "Mark the segment for removal (IPC_RMID); it disappears when the "
           "last process detaches.")
      .def(
          "close", [](PyRing& r) { r.segment.reset(); },
          "Drop this handle (producers and consumers keep the mapping).")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](PyRing& r, py::args) {
             r.segment.reset();
             return false;
           })
      .def_property_readonly(
          "key",
          [](PyRing& r) { return static_cast<std::uint32_t>(r.get().key()); })
      .def_property_readonly("capacity",
                             [](PyRing& r) { return r.get().capacity(); })
      .def_property_readonly(
          "kind", [](PyRing& r) { return kind_name(r.get().kind()); })
      .def_property_readonly(
          "max_record_size",
          [](PyRing& r) {
            return shmring::max_record_size(r.get().capacity());
          })
      .def_property_readonly(
          "slot_size", [](PyRing& r) { return r.get().slot_size(); },
          "A slots ring's element size in bytes; 0 for other kinds.")
      .def_property_readonly(
          "max_consumers", [](PyRing& r) { return r.get().max_consumers(); },
          "A broadcast ring's subscriber limit; 0 for other kinds.")
      .def_property_readonly(
          "overrun",
          [](PyRing& r) {
            return r.get().overrun() == shmring::Overrun::drop_slow
                       ? "drop-slow"
                       : "wait";
          },
          "A broadcast ring's policy, 'wait' or 'drop-slow'.")
      .def("__repr__", [](PyRing& r) {
        if (!r.segment) return std::string("<shmring.Ring closed>");
        char key[16];
        std::snprintf(key, sizeof key, "0x%08x",
                      static_cast<unsigned>(r.segment->key()));
        return std::string("<shmring.Ring key=") + key +
               " kind=" + kind_name(r.segment->kind()) +
               " capacity=" + std::to_string(r.segment->capacity()) + ">";
      });

  py::class_<PyProducer>(m, "Producer", "Writes records into a ring.")
      .def("write", &PyProducer::write, py::arg("data"),
           py::arg("timeout") = py::none(), py::arg("type") = 0,
           "Copy a bytes-like object in as one record. Blocks while the "
           "ring is full (timeout in seconds; None: for ever; 0: never).")
      .def("reserve", &PyProducer::reserve, py::arg("size"),
           py::arg("timeout") = py::none(),
           "Room for a record: a writable memoryview of `size` bytes on the "
           "ring, valid until commit() or abort().")
      .def("commit", &PyProducer::commit, py::arg("used") = py::none(),
           py::arg("type") = 0,
           "Publish the reservation, trimmed to `used` bytes.")
      .def("abort", &PyProducer::abort, "Drop the reservation.")
      .def("close", &PyProducer::close,
           "Detach; the last producer's close ends the stream.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](PyProducer& p, py::args) {
             p.close();
             return false;
           })
      .def_property_readonly(
          "max_record_size",
          [](PyProducer& p) { return p.get().max_record_size(); })
      .def_property_readonly("consumer_alive", [](PyProducer& p) {
        return p.get().consumer_alive();
      });

  py::class_<PyConsumer> consumer(
      m, "Consumer",
      "Reads the records of an spsc or mpsc ring; iterating yields "
      "read-only memoryviews valid until the next one.");
  bind_reader(consumer);

  py::class_<PySubscriber> subscriber(
      m, "Subscriber",
      "One of the readers of a broadcast ring: it sees every record "
      "committed after it attached. Iterating yields read-only memoryviews "
      "valid until the next one.");
  bind_reader(subscriber);
  subscriber
      .def("intact", &PySubscriber::intact,
           "Drop-slow rings: True if the records read since the last "
           "intact() (or release) were not overwritten while they were "
           "read; False: they were torn, are dropped and count as lost "
           "(the next read raises OverrunError). Call it after reading a "
           "memoryview and before using what was read. Always True on a "
           "wait ring.")
      .def_property_readonly(
          "lost_records",
          [](PySubscriber& s) { return s.get().lost_records(); },
          "Records the producer committed that this subscriber never "
          "delivered (drop-slow; 0 on a wait ring).")
      .def_property_readonly(
          "lost_bytes", [](PySubscriber& s) { return s.get().lost_bytes(); },
          "Their payload bytes.")
      .def_property_readonly(
          "cursor", [](PySubscriber& s) { return s.get().cursor(); },
          "The cursor this subscriber holds (0 .. max_consumers - 1).");

  py::class_<PyQueueWriter>(m, "QueueWriter",
                            "Writes the fixed-size elements of a slots ring "
                            "(C++ ByteQueueWriter).")
      .def("push", &PyQueueWriter::push, py::arg("value"),
           py::arg("timeout") = py::none(),
           "Append one element: bytes of the ring's element size, or with a "
           "format the tuple struct.pack takes. Blocks while the ring is "
           "full (timeout in seconds; None: for ever; 0: never).")
      .def(
          "try_push",
          [](PyQueueWriter& w, const py::object& value) { w.push(value, 0.0); },
          py::arg("value"),
          "push(value, timeout=0): WouldBlockError if the ring is full.")
      .def("close", &PyQueueWriter::close,
           "Detach; the reader then sees end of stream once it has read "
           "all.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](PyQueueWriter& w, py::args) {
             w.close();
             return false;
           })
      .def_property_readonly("element_size",
                             [](PyQueueWriter& w) { return w.fmt.size; })
      .def_property_readonly("format",
                             [](PyQueueWriter& w) { return w.fmt.format(); })
      .def_property_readonly("consumer_alive", [](PyQueueWriter& w) {
        return w.get().consumer_alive();
      });

  py::class_<PyQueueReader>(m, "QueueReader",
                            "Reads the fixed-size elements of a slots ring "
                            "(C++ ByteQueueReader); iterating yields them "
                            "until end of stream.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &PyQueueReader::next)
      .def(
          "pop",
          [](PyQueueReader& r, std::optional<double> timeout) {
            return r.pop(timeout, "pop");
          },
          py::arg("timeout") = py::none(),
          "The next element (bytes, or with a format the tuple "
          "struct.unpack gives); None at end of stream. timeout=0 raises "
          "WouldBlockError when the ring is empty.")
      .def(
          "try_pop", [](PyQueueReader& r) { return r.pop(0.0, "try_pop"); },
          "pop(timeout=0): WouldBlockError if the ring is empty.")
      .def("fileno", &PyQueueReader::fileno,
           "A file descriptor readable while an element (or end of stream) "
           "waits, as Consumer.fileno().")
      .def("close", &PyQueueReader::close)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](PyQueueReader& r, py::args) {
             r.close();
             return false;
           })
      .def_property_readonly("element_size",
                             [](PyQueueReader& r) { return r.fmt.size; })
      .def_property_readonly("format",
                             [](PyQueueReader& r) { return r.fmt.format(); })
      .def_property_readonly(
          "size_guess", [](PyQueueReader& r) { return r.get().size_guess(); },
          "Bytes of elements not yet read: a guess while the writer runs.");

  m.def("open", &open_ring, py::arg("key"), py::kw_only(),
        py::arg("create") = false, py::arg("kind") = py::none(),
        py::arg("capacity") = std::uint64_t{1} << 20, py::arg("wait") = "futex",
        py::arg("mode") = 0600, py::arg("max_producers") = 0,
        py::arg("proj") = "S", py::arg("slot_size") = py::none(),
        py::arg("max_consumers") = 0, py::arg("overrun") = "wait",
        "Open the ring under a SysV key (int) or ftok(path, proj) (str or "
        "os.PathLike). create: False attaches, True attaches or creates, "
        "'exclusive' creates or raises ExistsError. kind: 'spsc', 'mpsc', "
        "'broadcast', 'slots', or None (any on attach, spsc on create). "
        "slots: slot_size, the element size in bytes or a struct format. "
        "broadcast: max_consumers (0: the most) and overrun, 'wait' (for "
        "the slowest subscriber) or 'drop-slow' (never wait; a lapped "
        "subscriber loses records).");
  m.def(
      "remove",
      [](const py::object& key, const py::object& proj) {
        auto r = shmring::Segment::remove(key_of(key, proj));
        if (!r) raise_error(r.error());
      },
      py::arg("key"), py::kw_only(), py::arg("proj") = "S",
      "Remove the ring under a key or path without opening it.");
}
