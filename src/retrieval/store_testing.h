// Test support for the retrieval tests (not part of cw_retrieval).
#pragma once

#include <cstdio>
#include <string>

#include "support/testing.h"

namespace cw::retrieval {

// testing::temp_dir()/name with no database, WAL or shared-memory file of an earlier run left there.
inline std::string temp_db(const std::string& name) {
  const std::string p = testing::temp_dir() + "/" + name;
  std::remove(p.c_str());
  std::remove((p + "-wal").c_str());
  std::remove((p + "-shm").c_str());
  return p;
}

}  // namespace cw::retrieval
