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
  int64_t unit = 0;  // bf16: index of the (segment, head) pair in the current pass
};

// Query blocks small enough to spread `rows` query rows over all threads, large enough that a
// task amortizes its dispatch. bf16: whole chunks of the kernel's 48 rows from 48 on.
int64_t query_block(int64_t rows, int64_t threads, bool bf16) {
  int64_t block = std::clamp<int64_t>((rows + 4 * threads - 1) / (4 * threads), 16, bf16 ? 144 : 128);
  if (bf16 && block > 48) block = (block + 47) / 48 * 48;
  return block;
}

AttentionShape head_shape(const SegmentedAttentionShape& s, const Task& task) {
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
  return a;
}

void run_tasks(ThreadPool* pool, int64_t n, FunctionRef<void(int64_t)> fn) {
  auto body = [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) fn(t);
  };
  // Chunked: a thread preempted by another process delays the region by one chunk, not by a
  // whole share; every task's rows are computed whole by one thread, whichever it is.
  if (pool != nullptr && pool->size() > 1 && n > 1)
    pool->parallel_for_chunked(n, body);
  else
    body(0, n, 0);
}

void attend_f32(const float* q, const float* k, const float* v, float* out, const std::vector<int64_t>& cu,
                const SegmentedAttentionShape& s, ThreadPool* pool) {
  const int64_t threads = pool ? pool->size() : 1;
  std::vector<Task> tasks;
  for (size_t i = 0; i + 1 < cu.size(); ++i) {
    const int64_t begin = cu[i], len = cu[i + 1] - begin;
    if (len == 0) continue;
    const int64_t block = query_block(len * s.heads, threads, false);
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t q0 = 0; q0 < len; q0 += block)
        tasks.push_back(Task{begin, len, begin + q0, std::min(block, len - q0), h});
  }
  run_tasks(pool, static_cast<int64_t>(tasks.size()), [&](int64_t t) {
    const Task& task = tasks[static_cast<size_t>(t)];
    const int64_t col = task.head * s.head_dim;
    attention(q + task.q_begin * s.q_stride + col, k + task.kv_begin * s.k_stride + col,
              v + task.kv_begin * s.v_stride + col, out + task.q_begin * s.out_stride + col, head_shape(s, task));
  });
}

// bf16: passes over the (segment, head) pairs in order, as many per pass as their packed K/V
// fit in the budget: pack them (in parallel), then attend with every query block of the pass.
void attend_bf16(const float* q, const float* k, const float* v, float* out, const std::vector<int64_t>& cu,
                 const SegmentedAttentionShape& s, ThreadPool* pool, std::vector<uint16_t>& packed) {
  const int64_t threads = pool ? pool->size() : 1;
  struct Unit {
    int64_t begin, len, head;
    size_t offset;  // into packed, within the pass
  };
  std::vector<Unit> units;
  for (size_t i = 0; i + 1 < cu.size(); ++i)
    if (cu[i + 1] > cu[i])
      for (int64_t h = 0; h < s.heads; ++h) units.push_back(Unit{cu[i], cu[i + 1] - cu[i], h, 0});
  const size_t budget = static_cast<size_t>(std::max<int64_t>(s.pack_budget_bytes, 0)) / sizeof(uint16_t);
  std::vector<Task> tasks;
  for (size_t u0 = 0; u0 < units.size();) {
    size_t u1 = u0, elems = 0, rows = 0;
    while (u1 < units.size()) {
      const size_t e = attention_bf16_packed_elems(units[u1].len, s.head_dim);
      if (u1 > u0 && elems + e > budget) break;
      units[u1].offset = elems;
      elems += e;
      rows += static_cast<size_t>(units[u1].len);
      ++u1;
    }
    if (packed.size() < elems) packed.resize(elems);
    uint16_t* base = packed.data();
    run_tasks(pool, static_cast<int64_t>(u1 - u0), [&](int64_t i) {
      const Unit& u = units[u0 + static_cast<size_t>(i)];
      const int64_t col = u.head * s.head_dim;
      pack_attention_kv_bf16(k + u.begin * s.k_stride + col, s.k_stride, v + u.begin * s.v_stride + col, s.v_stride,
                             u.len, s.head_dim, base + u.offset);
    });
    tasks.clear();
    const int64_t block = query_block(static_cast<int64_t>(rows), threads, true);
    for (size_t i = u0; i < u1; ++i)
      for (int64_t q0 = 0; q0 < units[i].len; q0 += block)
        tasks.push_back(Task{units[i].begin, units[i].len, units[i].begin + q0, std::min(block, units[i].len - q0),
                             units[i].head, static_cast<int64_t>(i)});
    run_tasks(pool, static_cast<int64_t>(tasks.size()), [&](int64_t t) {
      const Task& task = tasks[static_cast<size_t>(t)];
      const int64_t col = task.head * s.head_dim;
      attention_bf16(q + task.q_begin * s.q_stride + col, base + units[static_cast<size_t>(task.unit)].offset,
                     out + task.q_begin * s.out_stride + col, head_shape(s, task));
    });
    u0 = u1;
  }
}

}  // namespace

void segmented_attention(const float* q, const float* k, const float* v, float* out,
                         const std::vector<int64_t>& cu_seqlens, const SegmentedAttentionShape& s, ThreadPool* pool,
                         std::vector<uint16_t>* packed) {
  QVL_ASSERT(!cu_seqlens.empty() && cu_seqlens.front() == 0);
  QVL_ASSERT(s.heads > 0 && s.head_dim > 0);
  for (size_t i = 0; i + 1 < cu_seqlens.size(); ++i) QVL_ASSERT(cu_seqlens[i + 1] >= cu_seqlens[i]);
  if (s.precision == AttentionPrecision::kBF16 && s.head_dim <= kMaxBf16AttentionHeadDim) {
    std::vector<uint16_t> local;
    attend_bf16(q, k, v, out, cu_seqlens, s, pool, packed ? *packed : local);
  } else {
    attend_f32(q, k, v, out, cu_seqlens, s, pool);
  }
}

}  // namespace qvl::kernels
