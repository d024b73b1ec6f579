// A persistent pool of worker threads. parallel_for splits [0, n) into one contiguous
// chunk per thread (static schedule), so results are deterministic for a fixed thread count.
// Safe to call from several threads: their parallel regions run one after another.
//
// Fork/join is built for many small regions (a decode step issues hundreds): the caller
// publishes the job by bumping an atomic generation counter; idle workers spin on it for a
// short while (QVL_POOL_SPIN_US, default 200 µs) before sleeping on a condition variable, and
// the caller spins the same way while waiting for the last worker. No allocation per region:
// the callables are taken by reference (FunctionRef), whatever they capture.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/function_ref.h"

namespace qvl {

class ThreadPool {
 public:
  // n_threads counts the calling thread: a pool of 1 runs everything inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) on disjoint chunks covering [0, n).
  // Chunk boundaries are multiples of `grain` (except the last), so callers can keep
  // SIMD blocks or quantization blocks whole. Chunk t is [b(t), b(t+1)) with
  // b(t) = grain * floor(blocks * t / threads), blocks = ceil(n / grain),
  // threads = min(size(), blocks): the same split every time for the same (n, grain).
  // Called from inside a region of the same pool it runs inline (fn(0, n, current index)).
  void parallel_for(int64_t n, FunctionRef<void(int64_t, int64_t, int)> fn,
                    int64_t grain = 1);

  // Like parallel_for, but [0, n) is cut into about kChunksPerThread chunks per thread (on grain
  // boundaries) that the threads take in order from a shared counter, and the region ends when
  // every chunk is done: a thread that the OS has not scheduled (another process holds its core)
  // is not waited for, and one preempted inside a chunk delays the region by that chunk only.
  // Which thread runs which chunk varies from call to call: use it where each element's result
  // does not depend on the chunking (matrix rows, attention heads).
  static constexpr int kChunksPerThread = 4;
  void parallel_for_chunked(int64_t n, FunctionRef<void(int64_t, int64_t, int)> fn,
                            int64_t grain = 1);

  // Runs fn(thread_index) once on every thread. (Nested inside a region of the same pool:
  // runs fn(0..size()-1) one after another on the current thread.)
  void run_on_all(FunctionRef<void(int)> fn);

 private:
  struct Job {
    const FunctionRef<void(int)>* all = nullptr;
    const FunctionRef<void(int64_t, int64_t, int)>* range = nullptr;
    int64_t n = 0, grain = 1, blocks = 0;
    int threads = 0;
    int64_t chunks = 0;  // > 0: chunked schedule, chunk c covers blocks [blocks*c/chunks, blocks*(c+1)/chunks)
  };
  void range_region(int64_t n, FunctionRef<void(int64_t, int64_t, int)> fn, int64_t grain, bool chunked);
  void worker_loop(int index);
  void run(const Job& job);       // fork, take part as thread 0, join; rethrows
  void execute(const Job& job, int index) noexcept;
  void execute_range(const Job& job, int64_t begin, int64_t end, int index) noexcept;
  // Claims and runs chunks of the chunked region `generation` until none is left (nothing if
  // that region is already over).
  void run_chunks(uint32_t generation, int index) noexcept;

  int n_threads_;
  int64_t spin_ns_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // one parallel region at a time: generators on other threads queue here

  Job job_;  // written by the caller before generation_ is bumped
  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};
  // Chunked regions: (generation << 32) | (chunks << 16) | next unclaimed chunk. A worker claims
  // a chunk with a compare-exchange that also checks the generation, so one that wakes after its
  // region ended claims nothing and never reads the finished job.
  alignas(64) std::atomic<uint64_t> chunk_claim_{0};
  alignas(64) std::atomic<int64_t> chunks_done_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_waiting_{false};
  std::atomic<bool> stop_{false};
  std::mutex mu_;  // guards the sleeps only
  std::condition_variable wake_;
  std::condition_variable done_;
  std::mutex error_mu_;
  std::exception_ptr error_;
};

// Number of hardware threads available to this process (at least 1).
int default_thread_count();

// Row-wise work of a whole batch (norms, residual adds, activations): a chunked region over the
// n rows when the batch is big enough to repay one (prefill), inline otherwise (a decode step's
// few rows, where a region's fork/join would cost more than the work). Each row is computed
// whole by one thread, so the results do not depend on the split.
inline void for_each_row(ThreadPool* pool, int64_t n, int64_t work_per_row,
                         FunctionRef<void(int64_t, int64_t, int)> fn) {
  constexpr int64_t kMinRegionWork = int64_t{1} << 16;  // element operations
  if (pool == nullptr || pool->size() <= 1 || n < 2 || n * work_per_row < kMinRegionWork) {
    fn(0, n, 0);
    return;
  }
  pool->parallel_for_chunked(n, fn);
}

}  // namespace qvl
