#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <sched.h>

namespace qvl {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Spins until pred() holds or spin_ns elapsed; true if pred() held.
template <class Pred>
bool spin_until(const Pred& pred, int64_t spin_ns) {
  if (pred()) return true;
  if (spin_ns <= 0) return false;
  const int64_t deadline = now_ns() + spin_ns;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      cpu_relax();
    }
    if (now_ns() > deadline) return pred();
  }
}

int64_t spin_ns_from_env() {
  const char* env = std::getenv("QVL_POOL_SPIN_US");
  if (env && *env) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && v >= 0) return static_cast<int64_t>(v) * 1000;
  }
  return 200 * 1000;
}

// The pool whose region the current thread is executing (for nested calls), and its index.
thread_local const ThreadPool* tl_pool = nullptr;
thread_local int tl_index = 0;

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)), spin_ns_(spin_ns_from_env()) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

// Runs range [begin, end) of `job` (or all of a run_on_all job) on thread `index`, as a member of
// this pool (nested calls run inline), keeping the first exception for the caller.
void ThreadPool::execute_range(const Job& job, int64_t begin, int64_t end, int index) noexcept {
  const ThreadPool* outer_pool = tl_pool;
  const int outer_index = tl_index;
  tl_pool = this;
  tl_index = index;
  try {
    if (job.all) (*job.all)(index);
    else if (begin < end) (*job.range)(begin, end, index);
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mu_);
    if (!error_) error_ = std::current_exception();
  }
  tl_pool = outer_pool;
  tl_index = outer_index;
}

void ThreadPool::execute(const Job& job, int index) noexcept {
  if (job.all) return execute_range(job, 0, 0, index);
  if (index >= job.threads) return;
  const int64_t b0 = job.blocks * index / job.threads, b1 = job.blocks * (index + 1) / job.threads;
  execute_range(job, b0 * job.grain, std::min(job.n, b1 * job.grain), index);
}

void ThreadPool::run_chunks(uint32_t generation, int index) noexcept {
  uint64_t claim = chunk_claim_.load(std::memory_order_acquire);
  for (;;) {
    const uint32_t gen = static_cast<uint32_t>(claim >> 32);
    const int64_t total = static_cast<int64_t>((claim >> 16) & 0xffff), c = static_cast<int64_t>(claim & 0xffff);
    if (gen != generation || c >= total) return;
    if (!chunk_claim_.compare_exchange_weak(claim, claim + 1, std::memory_order_acq_rel, std::memory_order_acquire))
      continue;
    // Chunk c is ours: the region cannot end before it is done, so job_ stays as published.
    const Job& job = job_;
    const int64_t b0 = job.blocks * c / job.chunks, b1 = job.blocks * (c + 1) / job.chunks;
    execute_range(job, b0 * job.grain, std::min(job.n, b1 * job.grain), index);
    if (chunks_done_.fetch_add(1) + 1 == total && caller_waiting_.load()) {
      std::lock_guard<std::mutex> lock(mu_);
      done_.notify_one();
    }
    claim = chunk_claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto ready = [&] { return generation_.load(std::memory_order_acquire) != seen || stop_.load(std::memory_order_relaxed); };
    if (!spin_until(ready, spin_ns_)) {
      std::unique_lock<std::mutex> lock(mu_);
      sleepers_.fetch_add(1);  // seq_cst: pairs with the caller's bump-then-check in run()
      wake_.wait(lock, [&] { return generation_.load() != seen || stop_.load(); });
      sleepers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    // Odd generations are chunked regions: take chunks while any is left, and do not report back
    // (the caller counts chunks, not threads). Even ones need every worker's part.
    if (seen & 1) {
      run_chunks(static_cast<uint32_t>(seen), index);
      continue;
    }
    execute(job_, index);
    if (pending_.fetch_sub(1) == 1 && caller_waiting_.load()) {
      std::lock_guard<std::mutex> lock(mu_);
      done_.notify_one();
    }
  }
}

void ThreadPool::run(const Job& job) {
  std::lock_guard<std::mutex> call_lock(call_mu_);
  error_ = nullptr;
  job_ = job;
  const bool chunked = job.chunks > 0;
  // The next generation with the parity of this region's kind (odd: chunked).
  const uint64_t current = generation_.load(std::memory_order_relaxed);
  const uint64_t next = current + 1 + ((current + 1) % 2 != static_cast<uint64_t>(chunked) ? 1 : 0);
  if (chunked) {
    chunks_done_.store(0, std::memory_order_relaxed);
    chunk_claim_.store((static_cast<uint64_t>(static_cast<uint32_t>(next)) << 32) | (static_cast<uint64_t>(job.chunks) << 16),
                       std::memory_order_relaxed);
  } else {
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  }
  generation_.store(next);  // seq_cst: publishes job_ and orders against sleepers_
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    wake_.notify_all();
  }
  if (chunked) run_chunks(static_cast<uint32_t>(next), 0);
  else execute(job, 0);
  auto finished = [&] {
    return chunked ? chunks_done_.load(std::memory_order_acquire) == job.chunks
                   : pending_.load(std::memory_order_acquire) == 0;
  };
  if (!spin_until(finished, spin_ns_)) {
    std::unique_lock<std::mutex> lock(mu_);
    caller_waiting_.store(true);
    done_.wait(lock, finished);
    caller_waiting_.store(false);
  }
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

void ThreadPool::run_on_all(FunctionRef<void(int)> fn) {
  if (n_threads_ == 1) {
    fn(0);
    return;
  }
  if (tl_pool == this) {  // nested: no other thread is free to help
    for (int i = 0; i < n_threads_; ++i) fn(i);
    return;
  }
  Job job;
  job.all = &fn;
  run(job);
}

void ThreadPool::range_region(int64_t n, FunctionRef<void(int64_t, int64_t, int)> fn, int64_t grain,
                              bool chunked) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t blocks = (n + grain - 1) / grain;
  const int threads = static_cast<int>(std::min<int64_t>(n_threads_, blocks));
  if (threads <= 1 || tl_pool == this) {
    fn(0, n, tl_pool == this ? tl_index : 0);
    return;
  }
  Job job;
  job.range = &fn;
  job.n = n;
  job.grain = grain;
  job.blocks = blocks;
  job.threads = threads;
  if (chunked) job.chunks = std::min<int64_t>({blocks, int64_t{n_threads_} * kChunksPerThread, 0xffff});
  run(job);
}

void ThreadPool::parallel_for(int64_t n, FunctionRef<void(int64_t, int64_t, int)> fn, int64_t grain) {
  range_region(n, fn, grain, /*chunked=*/false);
}

void ThreadPool::parallel_for_chunked(int64_t n, FunctionRef<void(int64_t, int64_t, int)> fn,
                                      int64_t grain) {
  range_region(n, fn, grain, /*chunked=*/true);
}

int default_thread_count() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace qvl
