// Threading: a runtime's own parallel-for when it lends one, else a plain std::thread
// fallback. Tasks are claimed from an atomic counter, so which thread runs which chunk
// varies, but chunk boundaries do not, and each output depends on one chunk only.
#include "parallel_for.h"

#include <atomic>
#include <thread>
#include <vector>

namespace edgebit {
namespace {

constexpr int32_t kMaxFallbackThreads = 256;

void std_thread_run(int32_t num_threads, int64_t n_tasks, edgebit_task_fn task,
                    void* task_ctx) {
    if (num_threads > kMaxFallbackThreads) num_threads = kMaxFallbackThreads;
    const int64_t workers = num_threads < n_tasks ? num_threads : n_tasks;
    if (workers <= 1) {
        for (int64_t i = 0; i < n_tasks; ++i) task(task_ctx, i);
        return;
    }
    std::atomic<int64_t> next{0};
    auto work = [&] {
        for (int64_t i = next.fetch_add(1); i < n_tasks; i = next.fetch_add(1)) task(task_ctx, i);
    };
    std::vector<std::thread> pool;
    try {
        pool.reserve(static_cast<size_t>(workers - 1));
        for (int64_t t = 1; t < workers; ++t) pool.emplace_back(work);
    } catch (...) {
        // Could not start (all) threads: the calling thread still drains every task below.
    }
    work();
    for (std::thread& t : pool) t.join();
}

}  // namespace

void run_parallel(const edgebit_threading* threads, int64_t n_tasks, edgebit_task_fn task,
                  void* task_ctx) {
    if (threads != nullptr && threads->parallel_for != nullptr) {
        threads->parallel_for(threads->pool_ctx, n_tasks, task, task_ctx);
    } else {
        std_thread_run(threads != nullptr ? threads->num_threads : 1, n_tasks, task, task_ctx);
    }
}

}  // namespace edgebit

extern "C" void edgebit_std_thread_parallel_for(void* pool_ctx, int64_t n_tasks,
                                                edgebit_task_fn task, void* task_ctx) {
    const int32_t n = pool_ctx != nullptr ? *static_cast<const int32_t*>(pool_ctx) : 1;
    edgebit::std_thread_run(n, n_tasks, task, task_ctx);
}
