// edgebit-engine-stress ARTIFACT_DIR [--engines N] [--generations G] [--seed S]: several engines in one process,
// each generating on its own thread, while a chaos thread cancels them at random moments and now and then closes
// one and opens it again, the way the Android app's JNI bridge does (EdgebitEngine.java: every call holds the
// engine's lock; cancel() only takes a second lock to read the handle; close() cancels, then takes both locks).
// Built with ThreadSanitizer or AddressSanitizer by the tests (edgebit.profile.bundle, sanitize=...).
//
// First every prompt/seed pair is generated once by one engine alone (the reference). Then every generation on the
// worker threads must equal its reference, or be a prefix of it when it was cancelled. Prints one JSON line with
// the counts; exit 0 when everything matched, 3 on a mismatch, 2 on an engine error.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "edgebit_engine.h"

namespace {

const char* const kPrompts[] = {"In the beginning", "And it came to pass", "The Lord is my shepherd",
                                "Tell me a short story.", "Why?"};
constexpr int kNumPrompts = sizeof(kPrompts) / sizeof(kPrompts[0]);

struct Job {  // generation j: a prompt, greedy or sampled, a length
    int prompt;
    edgebit_sampling s;
};

Job job(int j) {
    Job x{j % kNumPrompts, {}};
    edgebit_sampling_init(&x.s);
    x.s.max_new_tokens = 8 + (j * 5) % 17;
    x.s.ignore_eos = 1;
    if (j % 2) {
        x.s.temperature = 0.9f;
        x.s.top_k = 50;
        x.s.top_p = 0.9f;
        x.s.seed = static_cast<uint64_t>(j);
    }
    return x;
}
constexpr int kDistinctJobs = 2 * 17 * kNumPrompts;  // job(j) repeats with this period

edgebit_engine* open_engine(const std::string& dir) {
    edgebit_engine_config cfg;
    edgebit_engine_config_init(&cfg);
    cfg.threads = 1;  // the engines' own threads, not a runtime pool, are what is under test
    char err[1024];
    edgebit_engine* e = edgebit_engine_open(dir.c_str(), &cfg, err, sizeof err);
    if (!e) throw std::runtime_error(err);
    return e;
}

std::vector<int32_t> generated(const edgebit_engine* e) {
    std::vector<int32_t> v(edgebit_engine_last_generated_ids(e, nullptr, 0));
    edgebit_engine_last_generated_ids(e, v.data(), v.size());
    return v;
}

// One engine as the app holds it: lock for calls, cancel_lock for the handle cancel() reads.
struct Slot {
    std::mutex lock, cancel_lock;
    edgebit_engine* e = nullptr;
};

struct Counts {
    std::atomic<long> done{0}, cancelled{0}, reopened{0}, cancel_calls{0}, mismatches{0};
};

}  // namespace

int main(int argc, char** argv) {
    std::string dir;
    int engines = 4;
    long generations = 2000;
    uint64_t seed = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string f = argv[i];
        if (f == "--engines" && i + 1 < argc) engines = std::atoi(argv[++i]);
        else if (f == "--generations" && i + 1 < argc) generations = std::atol(argv[++i]);
        else if (f == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
        else if (dir.empty() && f.rfind("--", 0) != 0) dir = f;
        else {
            std::fprintf(stderr, "usage: edgebit-engine-stress ARTIFACT_DIR [--engines N] [--generations G] [--seed S]\n");
            return 1;
        }
    }
    if (dir.empty() || engines < 1 || generations < 1) {
        std::fprintf(stderr, "edgebit-engine-stress: an artifact dir, --engines >= 1 and --generations >= 1 are needed\n");
        return 1;
    }
    try {
        std::map<int, std::vector<int32_t>> reference;
        {
            edgebit_engine* e = open_engine(dir);
            for (int j = 0; j < kDistinctJobs && j < generations; ++j) {
                const Job x = job(j);
                if (edgebit_engine_generate(e, kPrompts[x.prompt], &x.s, nullptr, nullptr) != EDGEBIT_OK)
                    throw std::runtime_error(edgebit_engine_last_error(e));
                reference[j] = generated(e);
            }
            edgebit_engine_close(e);
        }
        std::vector<Slot> slots(engines);
        for (Slot& s : slots) s.e = open_engine(dir);
        Counts n;
        std::atomic<long> next{0};
        std::atomic<bool> stop{false}, failed{false};
        std::string error;
        std::mutex error_lock;

        auto worker = [&](Slot& slot) {
            for (long j; !failed && (j = next.fetch_add(1)) < generations;) {
                const Job x = job(static_cast<int>(j % kDistinctJobs));
                std::lock_guard<std::mutex> g(slot.lock);
                if (!slot.e) return;  // its reopen failed: the run is over
                const int rc = edgebit_engine_generate(slot.e, kPrompts[x.prompt], &x.s, nullptr, nullptr);
                if (rc != EDGEBIT_OK) {
                    std::lock_guard<std::mutex> eg(error_lock);
                    error = edgebit_engine_last_error(slot.e);
                    failed = true;
                    return;
                }
                edgebit_stats st;
                edgebit_engine_stats(slot.e, &st);
                const std::vector<int32_t> got = generated(slot.e), &want = reference.at(static_cast<int>(j % kDistinctJobs));
                const bool cancelled = st.stop_reason == EDGEBIT_STOP_CANCELLED;
                const bool ok = cancelled ? got.size() <= want.size() && std::equal(got.begin(), got.end(), want.begin())
                                          : got == want;
                if (!ok) n.mismatches++;
                n.cancelled += cancelled;
                n.done++;
            }
        };
        // Cancels at random moments; every 50th action closes an engine and opens it again as close() does.
        auto chaos = [&] {
            std::mt19937_64 rng(seed);
            while (!stop && !failed) {
                std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
                Slot& slot = slots[rng() % slots.size()];
                if (rng() % 50 == 0) {
                    {
                        std::lock_guard<std::mutex> c(slot.cancel_lock);
                        edgebit_engine_cancel(slot.e);
                    }
                    std::lock_guard<std::mutex> g(slot.lock);
                    std::lock_guard<std::mutex> c(slot.cancel_lock);
                    edgebit_engine_close(slot.e);
                    slot.e = nullptr;
                    try {
                        slot.e = open_engine(dir);
                    } catch (const std::exception& x) {  // a reopen that fails ends the run with its message
                        std::lock_guard<std::mutex> eg(error_lock);
                        error = x.what();
                        failed = true;
                        return;
                    }
                    n.reopened++;
                } else {
                    std::lock_guard<std::mutex> c(slot.cancel_lock);
                    if (slot.e) edgebit_engine_cancel(slot.e);
                    n.cancel_calls++;
                }
            }
        };
        std::vector<std::thread> threads;
        for (Slot& s : slots) threads.emplace_back(worker, std::ref(s));
        std::thread chaos_thread(chaos);
        for (std::thread& t : threads) t.join();
        stop = true;
        chaos_thread.join();
        for (Slot& s : slots) edgebit_engine_close(s.e);
        std::printf("{\"engines\": %d, \"generations\": %ld, \"cancelled\": %ld, \"cancel_calls\": %ld, "
                    "\"reopened\": %ld, \"mismatches\": %ld, \"references\": %zu}\n", engines, n.done.load(),
                    n.cancelled.load(), n.cancel_calls.load(), n.reopened.load(), n.mismatches.load(), reference.size());
        if (failed) throw std::runtime_error(error);
        return n.mismatches ? 3 : 0;
    } catch (const std::exception& x) {
        std::fflush(stdout);
        std::fprintf(stderr, "edgebit-engine-stress: error: %s\n", x.what());
        return 2;
    }
}
