// The thread pool: every index once, the caller takes part, workers really run
// chunks in parallel, jobs from several threads take turns.
#include "engine/thread_pool.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

using namespace huddle::engine;

TEST_CASE("thread pool: every index exactly once, for any size and grain", "[engine][threads]") {
  for (size_t threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    CHECK(pool.threads() == threads);
    for (size_t n : {0, 1, 2, 7, 64, 1000}) {
      for (size_t grain : {0, 1, 3, 64, 5000}) {
        std::vector<std::atomic<int>> hits(n);
        pool.parallel_for(n, grain, [&](size_t b, size_t e) {
          for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
        });
        for (size_t i = 0; i < n; ++i) REQUIRE(hits[i].load() == 1);
      }
    }
  }
}

TEST_CASE("thread pool: a worker runs a chunk while the caller is busy with another", "[engine][threads]") {
  ThreadPool pool(2);
  std::atomic<bool> other_ran{false};
  std::atomic<bool> gave_up{false};
  const std::thread::id caller = std::this_thread::get_id();
  pool.parallel_for(2, 1, [&](size_t b, size_t) {
    if (b == 0 && std::this_thread::get_id() == caller) {
      // Hold this chunk until another thread has run chunk 1 (or give up after
      // a long time, so a broken pool fails instead of hanging the suite).
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (!other_ran.load()) {
        if (std::chrono::steady_clock::now() > deadline) {
          gave_up = true;
          return;
        }
        std::this_thread::yield();
      }
    } else if (std::this_thread::get_id() != caller) {
      other_ran = true;
    }
  });
  CHECK_FALSE(gave_up.load());
}

TEST_CASE("thread pool: jobs submitted from several threads take turns", "[engine][threads]") {
  ThreadPool pool(3);
  std::atomic<long> total{0};
  auto submit = [&] {
    for (int r = 0; r < 200; ++r)
      pool.parallel_for(100, 7, [&](size_t b, size_t e) { total.fetch_add(static_cast<long>(e - b)); });
  };
  std::thread a(submit), b(submit);
  submit();
  a.join();
  b.join();
  CHECK(total.load() == 3 * 200 * 100);
}

TEST_CASE("thread pool: 0 threads means one per available core", "[engine][threads]") {
  ThreadPool pool(0);
  CHECK(pool.threads() >= 1);
}
