#include "engine/thread_pool.h"

#include <sched.h>

namespace huddle::engine {
namespace {

size_t available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return static_cast<size_t>(CPU_COUNT(&set));
  const unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

}  // namespace

ThreadPool::ThreadPool(size_t threads) {
  if (threads == 0) threads = available_cores();
  workers_.reserve(threads - 1);
  for (size_t i = 0; i + 1 < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::run(size_t n, size_t grain, void* fn, Trampoline call) {
  if (n == 0) return;
  if (grain == 0) grain = 1;
  const size_t chunks = (n + grain - 1) / grain;
  if (workers_.empty() || chunks == 1) {
    call(fn, 0, n);
    return;
  }
  std::lock_guard<std::mutex> one_job(run_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = fn;
    call_ = call;
    n_ = n;
    grain_ = grain;
    next_chunk_ = 0;
    chunks_ = chunks;
    finished_chunks_ = 0;
    ++generation_;
  }
  wake_.notify_all();
  work_on_current_job();
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return finished_chunks_ == chunks_; });
  fn_ = nullptr;
}

// Takes chunks of the current job until none is left.
void ThreadPool::work_on_current_job() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (next_chunk_ < chunks_) {
    const size_t chunk = next_chunk_++;
    void* fn = fn_;
    const Trampoline call = call_;
    const size_t begin = chunk * grain_, end = begin + grain_ < n_ ? begin + grain_ : n_;
    lock.unlock();
    call(fn, begin, end);
    lock.lock();
    if (++finished_chunks_ == chunks_) done_.notify_one();
  }
}

void ThreadPool::worker_loop(size_t) {
  size_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    work_on_current_job();
  }
}

}  // namespace huddle::engine
