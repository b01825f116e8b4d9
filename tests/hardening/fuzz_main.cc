// libFuzzer entry point for the segment fuzzer; built by scripts/fuzz with
// clang++-14 -fsanitize=fuzzer,address,undefined (Bazel's toolchain is gcc).
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "tests/hardening/fuzz_core.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto r = shmring::hardening::run_fuzz_input({data, size});
  if (!r.failure.empty()) {
    std::fprintf(stderr, "shmring fuzz: property failed: %s\n", r.failure.c_str());
    std::abort();  // libFuzzer saves the input as crash-*
  }
  return 0;
}
