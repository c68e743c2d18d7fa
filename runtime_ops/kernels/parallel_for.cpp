// Threading: a runtime's own parallel-for when it lends one, else edgebit's persistent pool
// (edgebit_threadpool). Tasks are claimed from an atomic counter, so which thread runs which
// chunk varies, but chunk boundaries do not, and each output depends on one chunk only.
//
// Pool protocol (one dispatch at a time per pool, guarded by dispatch_mu):
//   caller: job = &stack_job; ++gen; wake sleepers if any; run tasks; job = nullptr;
//           wait until active == 0.
//   worker: wait (spin, then block) until gen changes; ++active; j = job;
//           if j: run tasks of j; --active.
// active, job and the other flags are seq_cst: a worker that loaded a job pointer had
// already raised `active`, so the caller cannot return (and free its stack job) before that
// worker is done with it; a worker whose increment comes after the caller saw active == 0
// reads job == nullptr (or a later, live job). Late workers therefore just find no job, and a
// dispatch never waits for a worker that did not take part. The same store-then-load pairing
// guards sleeping (sleepers / gen, caller_waiting / active).
// Every "store, then load the other side's flag" is written as an RMW (exchange/fetch_add),
// never a plain seq_cst store: plain stores are enough for the C++ model and real CPUs, but
// qemu-user on an x86 host does not order an aarch64 stlr before a later ldar, and the
// resulting lost wake-up hung the aarch64 tests under qemu. RMWs are full barriers there.
#include "parallel_for.h"

#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#if !defined(_WIN32)
#include <pthread.h>
#endif

#include "kernel_variant.h"

namespace edgebit {
namespace {

constexpr int32_t kMaxPoolThreads = 1024;
constexpr int32_t kMaxFallbackThreads = 256;
// After a dispatch, workers (and a caller waiting for stragglers) poll this long before
// blocking: back-to-back decode calls then never pay a futex wake-up.
// EDGEBIT_SPIN_US overrides it (0: block at once), read when a pool is created or grown.
constexpr int64_t kDefaultSpinUs = 100;
constexpr int64_t kMaxSpinUs = 1000000;

int64_t spin_us_setting() {
    const char* e = getenv("EDGEBIT_SPIN_US");
    if (e == nullptr || *e == '\0') return kDefaultSpinUs;
    char* end = nullptr;
    const long long v = strtoll(e, &end, 10);
    if (*end != '\0' || v < 0) return kDefaultSpinUs;
    return v < kMaxSpinUs ? v : kMaxSpinUs;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

struct Job {
    edgebit_task_fn task;
    void* ctx;
    int64_t n_tasks;
    int32_t max_workers;  // workers with index >= this sit the job out
    alignas(64) std::atomic<int64_t> next{0};
};

void drain(Job& j) {
    for (int64_t i = j.next.fetch_add(1, std::memory_order_relaxed); i < j.n_tasks;
         i = j.next.fetch_add(1, std::memory_order_relaxed))
        j.task(j.ctx, i);
}

void run_serial(int64_t n_tasks, edgebit_task_fn task, void* task_ctx) {
    for (int64_t i = 0; i < n_tasks; ++i) task(task_ctx, i);
}

}  // namespace
}  // namespace edgebit

struct edgebit_threadpool {
    alignas(64) std::atomic<uint64_t> gen{0};
    std::atomic<edgebit::Job*> job{nullptr};
    std::atomic<bool> stop{false};
    std::atomic<int64_t> spin_us{0};  // poll this long before blocking (0: never poll)
    alignas(64) std::atomic<int32_t> active{0};
    std::atomic<int32_t> sleepers{0};
    std::atomic<bool> caller_waiting{false};
    alignas(64) std::atomic<int32_t> num_threads{1};  // caller + workers.size()
    std::mutex dispatch_mu;  // held for a whole parallel_for, for grow and destroy
    std::mutex mu;           // sleeping workers / sleeping caller
    std::condition_variable wake_cv;
    std::condition_variable done_cv;
    std::vector<std::thread> workers;
};

namespace edgebit {
namespace {

using Pool = edgebit_threadpool;

// Pools whose dispatch_mu this thread holds (a task that calls back into the same pool
// must not try_lock a mutex its own thread owns).
struct HeldPool {
    const Pool* pool;
    const HeldPool* prev;
};
thread_local const HeldPool* tl_held = nullptr;

bool held_by_this_thread(const Pool* p) {
    for (const HeldPool* h = tl_held; h != nullptr; h = h->prev)
        if (h->pool == p) return true;
    return false;
}

// Returns false when the pool is stopping.
bool wait_for_work(Pool* p, uint64_t seen) {
    if (const int64_t spin_us = p->spin_us.load(std::memory_order_relaxed)) {
        const auto spin_time = std::chrono::microseconds(spin_us);
        const auto t0 = std::chrono::steady_clock::now();
        for (unsigned i = 1;; ++i) {
            if (p->gen.load(std::memory_order_acquire) != seen) return true;
            if (p->stop.load(std::memory_order_relaxed)) return false;
            cpu_relax();
            if ((i & 63) == 0 && std::chrono::steady_clock::now() - t0 > spin_time) break;
        }
    }
    std::unique_lock<std::mutex> lock(p->mu);
    p->sleepers.fetch_add(1);
    p->wake_cv.wait(lock, [&] { return p->gen.load() != seen || p->stop.load(); });
    p->sleepers.fetch_sub(1);
    return !p->stop.load();
}

void worker_main(Pool* p, int32_t index, uint64_t seen) {
    while (wait_for_work(p, seen)) {
        seen = p->gen.load();
        p->active.fetch_add(1);
        Job* j = p->job.load();
        if (j != nullptr && index < j->max_workers) drain(*j);
        if (p->active.fetch_sub(1) == 1 && p->caller_waiting.load()) {
            std::lock_guard<std::mutex> lock(p->mu);
            p->done_cv.notify_all();
        }
    }
}

void wait_idle(Pool* p) {
    if (p->active.load() == 0) return;
    if (const int64_t spin_us = p->spin_us.load(std::memory_order_relaxed)) {
        const auto spin_time = std::chrono::microseconds(spin_us);
        const auto t0 = std::chrono::steady_clock::now();
        for (unsigned i = 1;; ++i) {
            if (p->active.load() == 0) return;
            cpu_relax();
            if ((i & 63) == 0 && std::chrono::steady_clock::now() - t0 > spin_time) break;
        }
    }
    std::unique_lock<std::mutex> lock(p->mu);
    p->caller_waiting.exchange(true);  // RMW, see the top of the file
    p->done_cv.wait(lock, [&] { return p->active.load() == 0; });
    p->caller_waiting.store(false);
}

// Adds workers until the pool has `want` threads (caller included). The caller holds
// dispatch_mu or is the only user of `p`. Returns false if a thread could not be started
// (the pool keeps the ones that did start).
bool grow(Pool* p, int32_t want) {
    bool ok = true;
    try {
        while (p->num_threads.load() < want) {
            const int32_t index = static_cast<int32_t>(p->workers.size());
            p->workers.emplace_back(worker_main, p, index, p->gen.load());
            p->num_threads.store(index + 2);
        }
    } catch (...) {
        ok = false;
    }
    const unsigned hw = std::thread::hardware_concurrency();
    // More threads than cores: spinning would steal the cores the others need; block at once.
    const bool fits = hw == 0 || static_cast<unsigned>(p->num_threads.load()) <= hw;
    p->spin_us.store(fits ? spin_us_setting() : 0);
    return ok;
}

void destroy(Pool* p) {
    {
        std::lock_guard<std::mutex> d(p->dispatch_mu);  // waits for a running dispatch
        p->stop.store(true);
        { std::lock_guard<std::mutex> lock(p->mu); }
        p->wake_cv.notify_all();
        for (std::thread& t : p->workers) t.join();
    }
    delete p;
}

// Runs the tasks with at most `participants` threads of `p` (caller included).
void pool_run(Pool* p, int32_t participants, int64_t n_tasks, edgebit_task_fn task,
              void* task_ctx) {
    if (participants <= 1 || n_tasks <= 1 || p->num_threads.load() <= 1 ||
        held_by_this_thread(p) || !p->dispatch_mu.try_lock()) {
        // Busy (another thread's dispatch, or a task calling back into its own pool):
        // the calling thread does the work alone rather than wait.
        run_serial(n_tasks, task, task_ctx);
        return;
    }
    std::lock_guard<std::mutex> d(p->dispatch_mu, std::adopt_lock);
    const HeldPool held = {p, tl_held};
    tl_held = &held;
    Job j;
    j.task = task;
    j.ctx = task_ctx;
    j.n_tasks = n_tasks;
    j.max_workers = participants - 1;
    p->job.store(&j);
    p->gen.fetch_add(1);
    if (p->sleepers.load() > 0) {
        { std::lock_guard<std::mutex> lock(p->mu); }
        p->wake_cv.notify_all();
    }
    drain(j);
    p->job.exchange(nullptr);  // RMW, see the top of the file
    wait_idle(p);
    tl_held = held.prev;
}

// ---- the process-wide pool behind edgebit_threading{NULL, NULL, n} --------------------

std::mutex g_global_mu;
std::atomic<Pool*> g_global{nullptr};

#if !defined(_WIN32)
// A forked child has none of the parent's workers: it abandons the copied pool and starts a
// fresh one on first use. g_global_mu is held across fork so the child's copy is consistent.
void lock_global_before_fork() { g_global_mu.lock(); }
void unlock_global_in_parent() { g_global_mu.unlock(); }
void forget_global_in_child() {
    g_global.store(nullptr);
    g_global_mu.unlock();
}
#endif

// Stops the workers when the library is unloaded or the process exits, unless a dispatch
// is still running (then the pool is left alone).
struct GlobalPoolReaper {
    ~GlobalPoolReaper() {
        Pool* p = g_global.exchange(nullptr);
        if (p == nullptr) return;
        if (!p->dispatch_mu.try_lock()) return;
        p->dispatch_mu.unlock();
        destroy(p);
    }
} g_reaper;

// The global pool with at least `want` threads if it can be had without waiting; else
// whatever exists (maybe smaller, maybe null).
Pool* global_pool(int32_t want) {
    Pool* p = g_global.load(std::memory_order_acquire);
    if (p != nullptr && p->num_threads.load(std::memory_order_relaxed) >= want) return p;
    std::lock_guard<std::mutex> g(g_global_mu);
    p = g_global.load();
    if (p == nullptr) {
        p = new (std::nothrow) Pool();
        if (p == nullptr) return nullptr;
        grow(p, want);
#if !defined(_WIN32)
        static const bool registered = pthread_atfork(lock_global_before_fork,
                                                      unlock_global_in_parent,
                                                      forget_global_in_child) == 0;
        (void)registered;
#endif
        g_global.store(p, std::memory_order_release);
    } else if (!held_by_this_thread(p) && p->dispatch_mu.try_lock()) {
        grow(p, want);
        p->dispatch_mu.unlock();
    }
    return p;
}

void fallback_run(int32_t num_threads, int64_t n_tasks, edgebit_task_fn task, void* task_ctx) {
    if (num_threads > kMaxFallbackThreads) num_threads = kMaxFallbackThreads;
    const int32_t want =
        static_cast<int32_t>(num_threads < n_tasks ? num_threads : n_tasks);
    if (want <= 1) {
        run_serial(n_tasks, task, task_ctx);
        return;
    }
    Pool* p = global_pool(want);
    if (p == nullptr) {
        run_serial(n_tasks, task, task_ctx);
        return;
    }
    pool_run(p, want, n_tasks, task, task_ctx);
}

}  // namespace

void run_parallel(const edgebit_threading* threads, int64_t n_tasks, edgebit_task_fn task,
                  void* task_ctx) {
    if (threads != nullptr && threads->parallel_for != nullptr) {
        threads->parallel_for(threads->pool_ctx, n_tasks, task, task_ctx);
    } else {
        fallback_run(threads != nullptr ? threads->num_threads : 1, n_tasks, task, task_ctx);
    }
}

}  // namespace edgebit

extern "C" {

void edgebit_std_thread_parallel_for(void* pool_ctx, int64_t n_tasks, edgebit_task_fn task,
                                     void* task_ctx) {
    const int32_t n = pool_ctx != nullptr ? *static_cast<const int32_t*>(pool_ctx) : 1;
    edgebit::fallback_run(n, n_tasks, task, task_ctx);
}

edgebit_threadpool* edgebit_threadpool_create(int32_t num_threads) {
    using namespace edgebit;
    if (num_threads < 1 || num_threads > kMaxPoolThreads) {
        set_error(EDGEBIT_ERR_BAD_SHAPE, "edgebit_threadpool_create: num_threads=%d not in [1, %d]",
                  static_cast<int>(num_threads), static_cast<int>(kMaxPoolThreads));
        return nullptr;
    }
    Pool* p = new (std::nothrow) Pool();
    if (p == nullptr) {
        set_error(EDGEBIT_ERR_OUT_OF_MEMORY, "edgebit_threadpool_create: out of memory");
        return nullptr;
    }
    if (!grow(p, num_threads)) {
        const int started = p->num_threads.load() - 1;
        destroy(p);
        set_error(EDGEBIT_ERR_OUT_OF_MEMORY,
                  "edgebit_threadpool_create: could only start %d of %d worker threads", started,
                  static_cast<int>(num_threads - 1));
        return nullptr;
    }
    return p;
}

void edgebit_threadpool_destroy(edgebit_threadpool* pool) {
    if (pool != nullptr) edgebit::destroy(pool);
}

void edgebit_threadpool_parallel_for(void* pool_ctx, int64_t n_tasks, edgebit_task_fn task,
                                     void* task_ctx) {
    if (n_tasks <= 0) return;
    auto* p = static_cast<edgebit_threadpool*>(pool_ctx);
    if (p == nullptr) {
        edgebit::run_serial(n_tasks, task, task_ctx);
        return;
    }
    edgebit::pool_run(p, p->num_threads.load(std::memory_order_relaxed), n_tasks, task, task_ctx);
}

}  // extern "C"
