#include "model/kv_cache.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

namespace cw::model {
namespace {

uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

}  // namespace

uint8_t* KvCache::reserve(const KvShape& shape) {
  const uint64_t total = shape.total_bytes();
  if (total == 0 || total > static_cast<uint64_t>(SIZE_MAX / 2)) return nullptr;
  // Anonymous private pages are zero on first touch; MAP_NORESERVE commits nothing up front.
  void* p = mmap(nullptr, static_cast<size_t>(total), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
}

KvCache::KvCache(const KvShape& shape, Reserved, uint8_t* base)
    : shape_(shape), base_(base), k_(base), v_(base + shape.total_bytes() / 2) {}

KvCache::KvCache(const KvShape& shape) : shape_(shape) {
  CW_CHECK(shape.n_layer > 0 && shape.kv_dim > 0 && shape.n_blocks > 0 && shape.block_size > 0);
  base_ = reserve(shape);
  CW_CHECK_MSG(base_ != nullptr, "cannot reserve a KV cache of " + std::to_string(shape.total_bytes()) + " bytes");
  k_ = base_;
  v_ = base_ + shape.total_bytes() / 2;
}

KvCache::~KvCache() {
  if (base_ != nullptr) munmap(base_, static_cast<size_t>(shape_.total_bytes()));
}

Result<std::unique_ptr<KvCache>> KvCache::create(const KvShape& shape) {
  CW_RETURN_IF_ERROR(check_fits(shape));
  uint8_t* base = reserve(shape);
  if (base == nullptr)
    return resource_exhausted("cannot reserve " + std::to_string(shape.total_bytes() >> 20) +
                              " MiB of address space for a KV cache of " +
                              std::to_string(int64_t{shape.n_blocks} * shape.block_size) + " positions");
  return std::unique_ptr<KvCache>(new KvCache(shape, Reserved{}, base));
}

Status KvCache::check_fits(const KvShape& shape) {
  if (shape.n_layer <= 0 || shape.kv_dim <= 0 || shape.n_blocks <= 0 || shape.block_size <= 0)
    return invalid_argument("KV cache: every dimension must be positive (blocks " + std::to_string(shape.n_blocks) +
                            ", block size " + std::to_string(shape.block_size) + ")");
  const uint64_t need = shape.total_bytes(), phys = physical_memory_bytes();
  if (phys > 0 && need > phys / 10 * 9)
    return out_of_range("a KV cache of " + std::to_string(int64_t{shape.n_blocks} * shape.block_size) +
                        " positions needs " + std::to_string(need >> 20) + " MiB, more than this machine's memory (" +
                        std::to_string(phys >> 20) + " MiB); use a smaller context or KV memory size");
  return Status::ok();
}

int32_t KvCache::blocks_for_bytes(const KvShape& s, uint64_t bytes) {
  const uint64_t per = s.block_bytes();
  if (per == 0) return 0;
  const uint64_t n = bytes / per;
  return n > static_cast<uint64_t>(INT32_MAX) ? INT32_MAX : static_cast<int32_t>(n);
}

size_t KvCache::offset(int64_t layer, int32_t block) const {
  CW_CHECK(layer >= 0 && layer < shape_.n_layer && block >= 0 && block < shape_.n_blocks);
  const int64_t per_block = int64_t{shape_.block_size} * shape_.kv_dim * shape_.element_bytes();
  return static_cast<size_t>((layer * shape_.n_blocks + block) * per_block);
}

void* KvCache::k_block(int64_t layer, int32_t block) { return k_ + offset(layer, block); }
void* KvCache::v_block(int64_t layer, int32_t block) { return v_ + offset(layer, block); }
const void* KvCache::k_block(int64_t layer, int32_t block) const { return k_ + offset(layer, block); }
const void* KvCache::v_block(int64_t layer, int32_t block) const { return v_ + offset(layer, block); }

void KvCache::copy_block(int32_t src, int32_t dst) {
  if (src == dst) return;
  const size_t n = static_cast<size_t>(int64_t{shape_.block_size} * shape_.kv_dim * shape_.element_bytes());
  for (int64_t l = 0; l < shape_.n_layer; ++l) {
    std::memcpy(k_block(l, dst), k_block(l, src), n);
    std::memcpy(v_block(l, dst), v_block(l, src), n);
    if (has_key_summaries()) std::memcpy(key_summary(l, dst), key_summary(l, src), 2 * shape_.kv_dim * sizeof(float));
  }
  if (has_key_summaries()) summary_valid_[static_cast<size_t>(dst)] = summary_valid_[static_cast<size_t>(src)];
}

void KvCache::copy_rows(int32_t src, int32_t src_slot, int32_t dst, int32_t dst_slot, int32_t n) {
  CW_CHECK(n >= 0 && src_slot >= 0 && dst_slot >= 0 && src_slot + n <= shape_.block_size &&
           dst_slot + n <= shape_.block_size);
  const size_t row = static_cast<size_t>(shape_.kv_dim * shape_.element_bytes());
  for (int64_t l = 0; l < shape_.n_layer; ++l) {
    std::memmove(static_cast<uint8_t*>(k_block(l, dst)) + dst_slot * row,
                 static_cast<const uint8_t*>(k_block(l, src)) + src_slot * row, n * row);
    std::memmove(static_cast<uint8_t*>(v_block(l, dst)) + dst_slot * row,
                 static_cast<const uint8_t*>(v_block(l, src)) + src_slot * row, n * row);
    if (has_key_summaries() && n > 0 && src != dst && l == 0 && !summary_valid(src))
      set_summary_valid(dst, false);
    if (has_key_summaries() && n > 0 && src != dst) {
      const float* from = key_summary(l, src);
      float* to = key_summary(l, dst);
      for (int64_t j = 0; j < shape_.kv_dim; ++j) {
        to[j] = std::min(to[j], from[j]);
        to[shape_.kv_dim + j] = std::max(to[shape_.kv_dim + j], from[shape_.kv_dim + j]);
      }
    }
  }
}

void KvCache::enable_key_summaries() {
  if (has_key_summaries()) return;
  summaries_.assign(static_cast<size_t>(shape_.n_layer * shape_.n_blocks * 2 * shape_.kv_dim), 0.0f);
  summary_valid_.assign(static_cast<size_t>(shape_.n_blocks), 0);
}

float* KvCache::key_summary(int64_t layer, int32_t block) {
  CW_CHECK(has_key_summaries() && layer >= 0 && layer < shape_.n_layer && block >= 0 && block < shape_.n_blocks);
  return summaries_.data() + (layer * shape_.n_blocks + block) * 2 * shape_.kv_dim;
}
const float* KvCache::key_summary(int64_t layer, int32_t block) const {
  return const_cast<KvCache*>(this)->key_summary(layer, block);
}

}  // namespace cw::model
