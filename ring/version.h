// The shmring release version, defined here and nowhere else: the tools'
// --version, the CMake package (CMakeLists.txt parses these three lines)
// and shmring.pc all take it from this header. CHANGELOG.md says what each
// version holds. Bump it when cutting a release.
#pragma once

#define SHMRING_VERSION_MAJOR 0
#define SHMRING_VERSION_MINOR 3
#define SHMRING_VERSION_PATCH 0

#define SHMRING_VERSION_STR_(x) #x
#define SHMRING_VERSION_STR(x) SHMRING_VERSION_STR_(x)
// "0.2.0"
// clang-format off
#define SHMRING_VERSION                          \
  SHMRING_VERSION_STR(SHMRING_VERSION_MAJOR)     \
  "." SHMRING_VERSION_STR(SHMRING_VERSION_MINOR) \
  "." SHMRING_VERSION_STR(SHMRING_VERSION_PATCH)
// clang-format on
