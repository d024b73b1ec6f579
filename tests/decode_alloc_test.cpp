// A steady decode step allocates nothing: the engine's step buffers, the decoder's workspace,
// the kernels' scratch and the thread pool's regions are all reused. Counted with a global
// operator new that this test binary replaces. (Under AddressSanitizer, which owns operator new,
// the count is not taken: the Release run of the suite asserts it.)
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "qvl/engine.hpp"
#include "qvl/qvl.hpp"
#include "test_util.h"

namespace {
std::atomic<bool> counting{false};
std::atomic<int64_t> allocations{0};
}  // namespace

#if defined(__SANITIZE_ADDRESS__)
#define QVL_COUNTS_ALLOCATIONS 0
#else
#define QVL_COUNTS_ALLOCATIONS 1

void* operator new(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  const size_t align = static_cast<size_t>(a);
  if (void* p = std::aligned_alloc(align, (n + align - 1) / align * align)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#endif

namespace qvl {
namespace {

TEST(DecodeStep, AllocatesNothingAfterWarmUp) {
  if (!QVL_COUNTS_ALLOCATIONS) GTEST_SKIP() << "AddressSanitizer owns operator new here; the Release build counts";
  for (const char* weights : {"", "q8_0"}) {
    ModelOptions mo;
    mo.threads = 2;
    mo.context_length = 512;
    mo.weights_type = weights;
    auto model = Model::load(test::tiny_model_dir(), mo);
    Processor processor(model);
    EngineOptions eo;
    eo.background_thread = false;
    Engine engine(model, eo);
    GeneratorParams greedy;
    greedy.max_new_tokens = 200;
    greedy.stop_at_eos = false;
    GeneratorParams sampled = greedy;
    sampled.do_sample = true;
    sampled.temperature = 0.8f;
    sampled.top_k = 40;
    sampled.top_p = 0.9f;
    sampled.seed = 3;
    int64_t tokens = 0;
    auto count = [&](const RequestEvent& e) { tokens += e.token >= 0; };
    engine.submit(processor.process_prompt("Hello"), greedy, count);
    engine.submit(processor.process_prompt("Tell me a story."), sampled, count);
    for (int i = 0; i < 8; ++i) engine.step();  // prefill and warm-up
    const int64_t before = tokens;
    allocations = 0;
    counting = true;
    for (int i = 0; i < 20; ++i) engine.step();
    counting = false;
    EXPECT_EQ(tokens - before, 40) << weights;  // two sequences decoded every step
    EXPECT_EQ(allocations.load(), 0) << "heap allocations in 20 decode steps, weights '" << weights << "'";
    for (auto id : {1u, 2u}) engine.cancel(id);
    engine.wait_idle();
  }
}

// The same for a single Generator's decode steps (greedy and sampled).
TEST(DecodeStep, GeneratorAllocatesNothingAfterWarmUp) {
  if (!QVL_COUNTS_ALLOCATIONS) GTEST_SKIP() << "AddressSanitizer owns operator new here; the Release build counts";
  ModelOptions mo;
  mo.threads = 2;
  mo.context_length = 512;
  auto model = Model::load(test::tiny_model_dir(), mo);
  for (bool sample : {false, true}) {
    GeneratorParams p;
    p.max_new_tokens = 200;
    p.stop_at_eos = false;
    p.do_sample = sample;
    p.temperature = 0.8f;
    p.top_k = sample ? 40 : 0;
    p.repetition_penalty = sample ? 1.1f : 1.0f;
    p.seed = 5;
    Generator gen(model, p);
    gen.append_inputs(Processor(model).process_prompt("Hello there"));
    for (int i = 0; i < 8; ++i) gen.generate_next_token();  // warm-up
    allocations = 0;
    counting = true;
    for (int i = 0; i < 20; ++i) gen.generate_next_token();
    counting = false;
    EXPECT_EQ(allocations.load(), 0) << "heap allocations in 20 generator decode steps, sampling " << sample;
  }
}

}  // namespace
}  // namespace qvl
