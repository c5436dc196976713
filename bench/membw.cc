// Memory read bandwidth of this machine (the decode roofline): T threads each sum their slice of a large
// buffer with 256-bit loads (compiled for AVX2 when the compiler allows; plain loads otherwise), best of R
// passes. Usage: cw_membw [MiB=2048] [threads=2] [reps=5]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

static uint64_t sum_slice(const uint8_t* p, size_t n) {
#if defined(__AVX2__)
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  uint64_t out[4];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), s);
  return out[0] + out[1] + out[2] + out[3];
#else
  uint64_t s = 0;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    s += v;
  }
  return s;
#endif
}

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 2048;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 5;
  if (mib == 0 || threads < 1 || reps < 1) {
    std::fprintf(stderr, "usage: cw_membw [MiB>0] [threads>=1] [reps>=1]\n");
    return 2;
  }
  const size_t n = mib << 20;
  auto* buf = static_cast<uint8_t*>(std::aligned_alloc(64, n));
  if (buf == nullptr) {
    std::fprintf(stderr, "cw_membw: cannot allocate %zu MiB\n", mib);
    return 1;
  }
  std::memset(buf, 1, n);
  double best = 0;
  uint64_t sink = 0;
  for (int r = 0; r < reps; ++r) {
    std::vector<std::thread> ts;
    std::vector<uint64_t> sums(static_cast<size_t>(threads));
    auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        const size_t b = n / threads * t / 128 * 128, e = t + 1 == threads ? n : n / threads * (t + 1) / 128 * 128;
        sums[static_cast<size_t>(t)] = sum_slice(buf + b, e - b);
      });
    for (auto& t : ts) t.join();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (uint64_t s : sums) sink += s;
    best = std::max(best, static_cast<double>(n) / sec / 1e9);
  }
  std::printf("read bandwidth: %.1f GB/s (%zu MiB, %d threads, best of %d)%s\n", best, mib, threads, reps,
              sink == 0 ? " " : "");
  std::free(buf);
  return 0;
}
