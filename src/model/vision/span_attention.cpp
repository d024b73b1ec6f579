#include "model/vision/span_attention.h"

#include <algorithm>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"

namespace qvl::kernels {

namespace {

struct Task {
  int64_t kv_begin, kv_len;  // the segment
  int64_t q_begin, q_len;    // a block of its queries
  int64_t head;
};

}  // namespace

void segmented_attention(const float* q, const float* k, const float* v, float* out,
                         const std::vector<int64_t>& cu_seqlens, const SegmentedAttentionShape& s, ThreadPool* pool) {
  QVL_ASSERT(!cu_seqlens.empty() && cu_seqlens.front() == 0);
  QVL_ASSERT(s.heads > 0 && s.head_dim > 0);
  // Query blocks small enough to spread one segment over all threads, large enough that a
  // task amortizes its dispatch.
  const int64_t threads = pool ? pool->size() : 1;
  std::vector<Task> tasks;
  for (size_t i = 0; i + 1 < cu_seqlens.size(); ++i) {
    const int64_t begin = cu_seqlens[i], len = cu_seqlens[i + 1] - begin;
    QVL_ASSERT(len >= 0);
    if (len == 0) continue;
    int64_t block = (len * s.heads + 4 * threads - 1) / (4 * threads);
    block = std::clamp<int64_t>(block, 16, 128);
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t q0 = 0; q0 < len; q0 += block)
        tasks.push_back(Task{begin, len, begin + q0, std::min(block, len - q0), h});
  }
  auto run = [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      const Task& task = tasks[static_cast<size_t>(t)];
      const int64_t col = task.head * s.head_dim;
      AttentionShape a;
      a.q_len = task.q_len;
      a.kv_len = task.kv_len;
      a.head_dim = s.head_dim;
      a.q_stride = s.q_stride;
      a.k_stride = s.k_stride;
      a.v_stride = s.v_stride;
      a.out_stride = s.out_stride;
      a.scale = s.scale;
      a.causal = false;
      attention(q + task.q_begin * s.q_stride + col, k + task.kv_begin * s.k_stride + col,
                v + task.kv_begin * s.v_stride + col, out + task.q_begin * s.out_stride + col, a);
    }
  };
  const int64_t n = static_cast<int64_t>(tasks.size());
  if (pool != nullptr && n > 1)
    pool->parallel_for(n, run);
  else
    run(0, n, 0);
}

}  // namespace qvl::kernels
