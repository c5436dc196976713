// libFuzzer harness for the GGUF reader: parse arbitrary bytes, then touch everything the parser handed
// out (metadata values, array conversions, tensor data ranges) so ASan sees any out-of-bounds view.
#include <cstddef>
#include <cstdint>
#include <span>

#include "gguf/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = cw::gguf::File::parse(std::span<const uint8_t>(data, size), "fuzz");
  if (!r.is_ok()) return 0;
  const cw::gguf::File& f = **r;
  volatile uint64_t sink = 0;
  for (const auto& kv : f.metadata()) {
    sink = sink + kv.key.size();
    const auto& v = kv.value;
    if (v.is_array()) {
      for (auto s : v.strings()) sink = sink + (s.empty() ? 0 : static_cast<uint8_t>(s.back()));
      if (auto fs = v.to_f32_vector(); fs.is_ok() && !fs->empty()) sink = sink + static_cast<uint64_t>((*fs)[0] != 0);
      if (auto is = v.to_i64_vector(); is.is_ok() && !is->empty()) sink = sink + static_cast<uint64_t>((*is).back());
      for (const auto& inner : v.arrays()) sink = sink + inner.array_size();
    } else if (auto s = v.as_string(); s.is_ok() && !s->empty()) {
      sink = sink + static_cast<uint8_t>(s->front()) + static_cast<uint8_t>(s->back());
    } else if (auto i = v.as_float(); i.is_ok()) {
      sink = sink + static_cast<uint64_t>(*i != 0);
    }
  }
  for (const auto& t : f.tensors()) {
    if (t.n_bytes > 0) sink = sink + t.data[0] + t.data[t.n_bytes - 1];
  }
  (void)f.find("general.architecture");
  return 0;
}
