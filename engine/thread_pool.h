// A small persistent thread pool for splitting one op's work (DESIGN.md §4):
// workers sleep on a condition variable between jobs (no spin-waiting), the
// calling thread takes a share of every job, and a job allocates nothing.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace huddle::engine {

class ThreadPool {
 public:
  // `threads` in all, the caller included: 1 runs everything on the caller.
  // 0 means one per CPU core this process may run on.
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t threads() const { return workers_.size() + 1; }

  // Calls fn(begin, end) over [0, n) in contiguous chunks of `grain` items
  // (the last may be shorter), spread over the threads; returns when all are
  // done. fn must not throw. Calls from several threads at once take turns.
  template <class Fn>
  void parallel_for(size_t n, size_t grain, Fn&& fn) {
    run(n, grain, &fn, [](void* f, size_t b, size_t e) { (*static_cast<Fn*>(f))(b, e); });
  }

 private:
  using Trampoline = void (*)(void*, size_t, size_t);
  void run(size_t n, size_t grain, void* fn, Trampoline call);
  void work_on_current_job();
  void worker_loop(size_t index);

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one job at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  // The current job, guarded by mutex_.
  size_t generation_ = 0;
  bool stop_ = false;
  void* fn_ = nullptr;
  Trampoline call_ = nullptr;
  size_t n_ = 0, grain_ = 1, next_chunk_ = 0, chunks_ = 0, finished_chunks_ = 0;
};

}  // namespace huddle::engine
