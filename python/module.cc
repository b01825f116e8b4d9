// The Python module `shmring` (docs/python.md), on the public C++ API.
//
// Blocking calls release the GIL and wait in slices of kSlice, taking the
// GIL back between slices to run Python's signal handlers: Ctrl-C raises
// KeyboardInterrupt within a slice. Zero-copy views (reserve(), iteration)
// are memoryviews on the ring; they are released (made unusable) when the
// reservation is committed or the next record is taken, so Python code can
// never touch ring memory it no longer owns.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // std::optional arguments

#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

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
PyObject* g_status_errors[8] = {};
PyObject* g_errc_errors[14] = {};

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
// Python's signal handlers run between slices.
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
      s = block<Status>(timeout, "write", [&](Timeout slice) {
        return prod.write(bytes, slice, type);
      });
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
      r = block<Reservation>(timeout, "reserve", [&](Timeout slice) {
        return prod.reserve(n, slice);
      });
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

struct PyConsumer {
  std::shared_ptr<Segment> segment;
  std::optional<Consumer> c;
  View view;             // the current record from iteration
  bool holding = false;  // a peeked, unreleased record
  bool busy = false;

  Consumer& get() {
    if (!c)
      raise(g_status_errors[static_cast<int>(Status::closed)],
            "the consumer is closed");
    return *c;
  }

  void drop(bool force = false) {
    view.retire(force);
    if (holding) {
      holding = false;
      c->release();
    }
  }

  // The next record; nullopt at end of stream.
  std::optional<Record> next_record(std::optional<double> timeout,
                                    const char* what) {
    Consumer& cons = get();
    drop();
    Peeked p = cons.try_peek();
    if (p.status == Status::would_block) {
      p = block<Peeked>(timeout, what,
                        [&](Timeout slice) { return cons.peek(slice); });
    }
    if (p.status == Status::closed) return std::nullopt;
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
    auto r = next_record(timeout, "read");
    if (!r) return py::none();
    py::bytes out(reinterpret_cast<const char*>(r->data), r->size);
    holding = false;
    c->release();
    return out;
  }

  void release() {
    InUse in_use(busy);
    get();
    drop();
  }

  int fileno() {
    Consumer& cons = get();
    auto fd = cons.wait_fd();
    if (!fd) raise_error(fd.error());
    return *fd;
  }

  void close() {
    InUse in_use(busy);
    if (!c) return;
    drop(true);
    c->close();
    c.reset();
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

  std::unique_ptr<PyConsumer> consumer() {
    auto h = std::make_unique<PyConsumer>();
    h->segment = segment;
    auto c = Consumer::attach(get());
    if (!c) raise_error(c.error());
    h->c.emplace(std::move(c).value());
    return h;
  }

  void remove() {
    auto r = get().remove();
    if (!r) raise_error(r.error());
  }
};

std::unique_ptr<PyRing> open_ring(const py::object& key, py::object create,
                                  const std::optional<std::string>& kind,
                                  std::uint64_t capacity,
                                  const std::string& wait, unsigned mode,
                                  std::uint32_t max_producers,
                                  const py::object& proj) {
  const key_t k = key_of(key, proj);
  RingOptions o;
  o.capacity = capacity;
  o.mode = mode;
  o.max_producers = max_producers;
  std::optional<Kind> expect;
  if (kind) {
    if (*kind == "spsc") {
      o.kind = Kind::spsc;
    } else if (*kind == "mpsc") {
      o.kind = Kind::mpsc;
    } else {
      raise(PyExc_ValueError, "kind must be 'spsc', 'mpsc' or None");
    }
    expect = o.kind;
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
  if ((*seg)->kind() == Kind::slots) {
    // Fixed-size elements have no record framing to hand out.
    raise_error(Error{Errc::wrong_kind,
                      "this is a slots ring (fixed-size elements of " +
                          std::to_string((*seg)->slot_size()) +
                          " bytes for C++ QueueWriter/QueueReader<T>); the "
                          "Python module moves records and opens spsc and "
                          "mpsc rings only"});
  }
  if ((*seg)->overrun() == Overrun::drop_slow) {
    // Its producer overwrites records while they are read; a memoryview
    // cannot be checked for that, so the module would hand out torn data.
    raise_error(Error{Errc::wrong_kind,
                      "this is a drop-slow broadcast ring (its producer "
                      "overwrites records a slow consumer may be reading); "
                      "the Python module cannot check a record for that and "
                      "opens spsc and mpsc rings only: read it with "
                      "shm-consume"});
  }
  if ((*seg)->kind() == Kind::broadcast) {
    raise_error(Error{Errc::wrong_kind,
                      "this is a broadcast ring; the Python module opens "
                      "spsc and mpsc rings only: read it with shm-consume "
                      "(or C++ Subscriber)"});
  }
  auto ring = std::make_unique<PyRing>();
  ring->segment = std::make_shared<Segment>(std::move(*seg).value());
  return ring;
}

}  // namespace
}  // namespace shmring::python

PYBIND11_MODULE(shmring, m) {
  using namespace shmring::python;
  using shmring::python::PyConsumer;
  using shmring::python::PyProducer;
  using shmring::python::PyRing;
  m.doc() =
      "shmring: a lock-free ring of records in a System V shared-memory "
      "segment. See docs/python.md.";
  m.attr("__version__") = SHMRING_VERSION;  // ring/version.h
  add_exceptions(m);
  if (PyType_Ready(&g_ring_memory_type) < 0) throw py::error_already_set();

  py::class_<PyRing>(m, "Ring", "A ring; open() makes one.")
      .def("producer", &PyRing::producer, py::kw_only(),
           py::arg("wait_for_consumer") = false,
           "Attach as a producer (a context manager).")
      .def("consumer", &PyRing::consumer,
           "Attach as the consumer (a context manager, iterable).")
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

  py::class_<PyConsumer>(m, "Consumer",
                         "Reads records; iterating yields read-only "
                         "memoryviews valid until the next one.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &PyConsumer::next)
      .def("read", &PyConsumer::read, py::arg("timeout") = py::none(),
           "The next record as bytes; None at end of stream. timeout=0 "
           "raises WouldBlockError when the ring is empty.")
      .def("release", &PyConsumer::release,
           "Give the current record back to producers (its memoryview "
           "becomes unusable); iteration does it for you.")
      .def("fileno", &PyConsumer::fileno,
           "A file descriptor readable while a record (or end of stream) "
           "waits: for select, selectors, asyncio's add_reader. Drain with "
           "read(timeout=0) until WouldBlockError.")
      .def("close", &PyConsumer::close)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyConsumer& c, py::args) {
        c.close();
        return false;
      });

  m.def("open", &open_ring, py::arg("key"), py::kw_only(),
        py::arg("create") = false, py::arg("kind") = py::none(),
        py::arg("capacity") = std::uint64_t{1} << 20, py::arg("wait") = "futex",
        py::arg("mode") = 0600, py::arg("max_producers") = 0,
        py::arg("proj") = "S",
        "Open the ring under a SysV key (int) or ftok(path, proj) (str or "
        "os.PathLike). create: False attaches, True attaches or creates, "
        "'exclusive' creates or raises ExistsError. kind: 'spsc', 'mpsc', "
        "or None (any on attach, spsc on create).");
  m.def(
      "remove",
      [](const py::object& key, const py::object& proj) {
        auto r = shmring::Segment::remove(key_of(key, proj));
        if (!r) raise_error(r.error());
      },
      py::arg("key"), py::kw_only(), py::arg("proj") = "S",
      "Remove the ring under a key or path without opening it.");
}
