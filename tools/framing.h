// How shm-produce cuts its input into records and shm-consume writes them
// back. The producer tags every record with its framing in the record's
// 13-bit type, so `shm-consume` (default --framing auto) restores lines and
// length frames without being told; other writers' records (type 0 or
// unknown) are written as raw bytes. docs/tools.md, "Record types".
#pragma once

#include <cstdint>
#include <string>

namespace shmring::tools {

enum RecordType : std::uint16_t {
  kTypeBytes = 0,        // a chunk of a byte stream: written as is
  kTypeLine = 1,         // a line without its '\n': written with '\n'
  kTypePartialLine = 2,  // the input's last line, which had no '\n'
  kTypeFrame = 3,        // a length-framed message: written as [u32 LE][bytes]
};

enum class Framing { automatic, bytes, lines, length };

inline Framing framing_from(const std::string& s) {
  if (s == "bytes") return Framing::bytes;
  if (s == "lines") return Framing::lines;
  if (s == "length") return Framing::length;
  return Framing::automatic;
}

}  // namespace shmring::tools
