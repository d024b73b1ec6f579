// ThreadPool: static and chunked schedules, exceptions, concurrent callers, nested calls, both the spinning
// and the sleeping wake-up paths, and the cost of one fork/join.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include "core/thread_pool.h"

namespace qvl {
namespace {

struct Chunk {
  int64_t begin, end;
  int thread;
  bool operator<(const Chunk& o) const { return std::tie(begin, end, thread) < std::tie(o.begin, o.end, o.thread); }
};

std::vector<Chunk> chunks_of(ThreadPool& pool, int64_t n, int64_t grain) {
  std::mutex mu;
  std::vector<Chunk> out;
  pool.parallel_for(
      n,
      [&](int64_t b, int64_t e, int t) {
        std::lock_guard<std::mutex> lock(mu);
        out.push_back({b, e, t});
      },
      grain);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ThreadPool, StaticChunksCoverRangeOnGrainBoundaries) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {1, 2, 3, 7, 16, 17, 100, 1000}) {
      for (int64_t grain : {1, 2, 16, 32}) {
        const std::vector<Chunk> c = chunks_of(pool, n, grain);
        ASSERT_FALSE(c.empty());
        int64_t pos = 0;
        std::set<int> seen;
        for (const Chunk& ch : c) {
          EXPECT_EQ(ch.begin, pos);
          EXPECT_LT(ch.begin, ch.end);
          EXPECT_TRUE(ch.begin % grain == 0);
          EXPECT_TRUE(ch.end % grain == 0 || ch.end == n);
          EXPECT_GE(ch.thread, 0);
          EXPECT_LT(ch.thread, threads);
          EXPECT_TRUE(seen.insert(ch.thread).second) << "one chunk per thread";
          pos = ch.end;
        }
        EXPECT_EQ(pos, n);
        // Deterministic: the same split every time.
        EXPECT_EQ(chunks_of(pool, n, grain).size(), c.size());
        const std::vector<Chunk> again = chunks_of(pool, n, grain);
        for (size_t i = 0; i < c.size(); ++i) {
          EXPECT_EQ(again[i].begin, c[i].begin);
          EXPECT_EQ(again[i].thread, c[i].thread);
        }
      }
    }
  }
}

TEST(ThreadPool, ChunkedScheduleCoversRangeOnceOnGrainBoundaries) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {int64_t{1}, int64_t{5}, int64_t{16}, int64_t{100}, int64_t{1001}}) {
      for (int64_t grain : {int64_t{1}, int64_t{4}, int64_t{16}}) {
        std::mutex mu;
        std::vector<Chunk> got;
        pool.parallel_for_chunked(
            n,
            [&](int64_t b, int64_t e, int t) {
              std::lock_guard<std::mutex> lock(mu);
              got.push_back({b, e, t});
            },
            grain);
        std::sort(got.begin(), got.end());
        int64_t next = 0;
        for (const Chunk& c : got) {
          EXPECT_EQ(c.begin, next) << "n=" << n << " grain=" << grain;
          EXPECT_LT(c.begin, c.end);
          EXPECT_TRUE(c.begin % grain == 0);
          EXPECT_TRUE(c.end % grain == 0 || c.end == n);
          EXPECT_GE(c.thread, 0);
          EXPECT_LT(c.thread, threads);
          next = c.end;
        }
        EXPECT_EQ(next, n);
        const int64_t blocks = (n + grain - 1) / grain;
        const int64_t expected = threads == 1 ? 1 : std::min<int64_t>(blocks, threads * ThreadPool::kChunksPerThread);
        EXPECT_EQ(static_cast<int64_t>(got.size()), expected) << "n=" << n << " grain=" << grain;
      }
    }
  }
}

// A thread that stalls in its first chunk (as if preempted) leaves the remaining chunks to the
// other thread instead of holding a fixed half of the range.
TEST(ThreadPool, ChunkedScheduleRoutesWorkAroundAStalledThread) {
  ThreadPool pool(2);
  std::atomic<int> stalled{-1};
  std::atomic<int64_t> by_other{0};
  pool.parallel_for_chunked(64, [&](int64_t b, int64_t e, int t) {
    int expected = -1;
    if (stalled.compare_exchange_strong(expected, t)) {
      // Stay in this chunk until the other thread has done every other one (10 s at most).
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (by_other.load() < 64 - (e - b) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return;
    }
    if (t != stalled.load()) by_other += e - b;
  });
  EXPECT_EQ(by_other.load(), 64 - 64 / (2 * ThreadPool::kChunksPerThread));  // all but the stalled chunk
}

// Chunked regions end when their chunks are done, without waiting for workers that have not
// woken yet; such a worker must then claim nothing of a finished region, and must still do its
// part of the static regions and run_on_all calls that follow. Workers that never spin (spin 0,
// so they sleep and wake late) over thousands of tiny mixed regions: every element of every
// region is processed exactly once.
TEST(ThreadPool, LateWorkersNeverTouchAFinishedChunkedRegion) {
  setenv("QVL_POOL_SPIN_US", "0", 1);
  ThreadPool pool(3);
  unsetenv("QVL_POOL_SPIN_US");
  std::vector<std::atomic<int>> hits(64);
  std::atomic<int> all_calls{0};
  std::mt19937 rng(7);
  for (int r = 0; r < 6000; ++r) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % 64);
    for (auto& h : hits) h.store(0);
    const int kind = static_cast<int>(rng() % 3);
    auto mark = [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
    };
    if (kind == 0) pool.parallel_for_chunked(n, mark);
    else if (kind == 1) pool.parallel_for(n, mark);
    else pool.run_on_all([&](int) { all_calls.fetch_add(1); });
    if (kind == 2) continue;
    for (int64_t i = 0; i < 64; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), i < n ? 1 : 0) << "region " << r << " kind " << kind;
  }
  EXPECT_EQ(all_calls.load() % 3, 0);
}

TEST(ThreadPool, RunOnAllRunsOncePerThread) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(4);
  for (int rep = 0; rep < 100; ++rep) pool.run_on_all([&](int t) { hits[t].fetch_add(1); });
  for (auto& h : hits) EXPECT_EQ(h.load(), 100);
}

TEST(ThreadPool, ExceptionsPropagateAndPoolStaysUsable) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for(300, [](int64_t b, int64_t, int) {
    if (b > 0) throw std::runtime_error("boom");
  }),
               std::runtime_error);
  EXPECT_THROW(pool.run_on_all([](int t) {
    if (t == 0) throw std::logic_error("main");
  }),
               std::logic_error);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(1000, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) sum += i;
  });
  EXPECT_EQ(sum.load(), 999 * 1000 / 2);
}

TEST(ThreadPool, ConcurrentCallersAreSerialized) {
  ThreadPool pool(3);
  std::atomic<int> inside{0}, max_inside{0};
  std::vector<std::thread> callers;
  std::atomic<int64_t> total{0};
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int rep = 0; rep < 500; ++rep) {
        pool.run_on_all([&](int t) {
          if (t == 0) {
            const int now = inside.fetch_add(1) + 1;
            int prev = max_inside.load();
            while (now > prev && !max_inside.compare_exchange_weak(prev, now)) {
            }
          }
          total.fetch_add(1);
          if (t == 0) inside.fetch_sub(1);
        });
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4 * 500 * 3);
  EXPECT_EQ(max_inside.load(), 1);
}

TEST(ThreadPool, NestedCallsRunInline) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(4, [&](int64_t b, int64_t e, int t) {
    for (int64_t i = b; i < e; ++i) {
      pool.parallel_for(10, [&](int64_t b2, int64_t e2, int t2) {
        EXPECT_EQ(t2, t);
        for (int64_t j = b2; j < e2; ++j) sum += j;
      });
    }
  });
  EXPECT_EQ(sum.load(), 4 * 45);
}

TEST(ThreadPool, SleepingWorkersWakeUp) {
  ::setenv("QVL_POOL_SPIN_US", "0", 1);  // read by the constructor: no spinning at all
  ThreadPool pool(3);
  ::unsetenv("QVL_POOL_SPIN_US");
  for (int rep = 0; rep < 200; ++rep) {
    std::atomic<int> hits{0};
    pool.run_on_all([&](int) { hits.fetch_add(1); });
    ASSERT_EQ(hits.load(), 3);
    if (rep % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // A long job on a worker makes the caller wait on the condition variable.
  pool.run_on_all([](int t) {
    if (t == 2) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  });
}

TEST(ThreadPool, ManySmallRegions) {
  const int threads = std::max(2, std::min(4, default_thread_count()));
  ThreadPool pool(threads);
  std::vector<int64_t> data(4096, 1);
  const int regions = 20000;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t checksum = 0;
  for (int r = 0; r < regions; ++r) {
    std::atomic<int64_t> sum{0};
    pool.parallel_for(
        static_cast<int64_t>(data.size()),
        [&](int64_t b, int64_t e, int) {
          int64_t s = 0;
          for (int64_t i = b; i < e; ++i) s += data[i];
          sum += s;
        },
        64);
    checksum += sum.load();
  }
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(checksum, static_cast<int64_t>(regions) * 4096);
  std::printf("%d threads: %.2f us per parallel_for region (incl. a 4096-element sum)\n", threads, us / regions);
}

}  // namespace
}  // namespace qvl
