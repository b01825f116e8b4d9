// Every C++ Status and Errc has a C code of its own (ring/shmring_c.h):
// walks both enums up to the first value to_string() does not know, so a
// value added to the C++ API without a C code fails here.
#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "ring/shmring.h"
#include "ring/shmring_c.h"

namespace shmring {
namespace {

// The C codes: Status values as they are, Errc values from 20.
constexpr int kErrcBase = SHMRING_E_NOT_FOUND;

TEST_CASE("c api: every Status and Errc has its own named code") {
  std::set<std::string> names;
  int statuses = 0;
  for (int i = 0; std::string(to_string(static_cast<Status>(i))) !=
                  to_string(static_cast<Status>(-1));
       ++i) {
    CAPTURE(i, to_string(static_cast<Status>(i)));
    const std::string name = shmring_strerror(i);
    CHECK(name != "unknown");
    CHECK(names.insert(name).second);
    ++statuses;
  }
  CHECK(statuses == SHMRING_REMOVED + 1);
  int errcs = 0;
  for (int i = 0; std::string(to_string(static_cast<Errc>(i))) !=
                  to_string(static_cast<Errc>(-1));
       ++i) {
    CAPTURE(i, to_string(static_cast<Errc>(i)));
    const std::string name = shmring_strerror(kErrcBase + i);
    CHECK(name != "unknown");
    CHECK(names.insert(name).second);
    ++errcs;
  }
  CHECK(kErrcBase + errcs - 1 == SHMRING_E_SYSTEM);
  // The C API's own codes do not reuse a name.
  CHECK(names.insert(shmring_strerror(SHMRING_E_NO_MEMORY)).second);
  CHECK(names.insert(shmring_strerror(SHMRING_E_BUFFER)).second);
}

}  // namespace
}  // namespace shmring
