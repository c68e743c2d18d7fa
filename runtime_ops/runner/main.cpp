// edgebit-runner ARTIFACT_DIR [--prompt TEXT | --chat | --soak SECONDS | benchmark options]: the engine from the command line.
// Errors are one line on stderr with exit code 2 (1 for usage).
#include <cstdio>
#include <stdexcept>
#include <string>

#include "bench_mode.h"
#include "cli_args.h"
#include "edgebit_engine.h"
#include "sysinfo.h"
#include "soak_mode.h"
#include "text_mode.h"

using namespace edgebit_runner;

int main(int argc, char** argv) {
    const Args a = parse_args(argc, argv);
    edgebit_engine* e = nullptr;
    try {
        edgebit_engine_config cfg;
        edgebit_engine_config_init(&cfg);
        cfg.threads = a.threads;
        cfg.verify = a.verify;
        cfg.max_memory_mb = a.max_memory_mb;
        if (!a.op_library.empty()) cfg.op_library = a.op_library.c_str();
        if (!a.profile.empty()) cfg.profile_prefix = a.profile.c_str();
        const long long rss_before = edgebit::engine::proc_status_bytes("VmRSS");
        const double t0 = edgebit::engine::now_ms();
        char err[1024];
        e = edgebit_engine_open(a.artifact.c_str(), &cfg, err, sizeof err);
        if (!e) throw std::runtime_error(err);
        const double load_ms = edgebit::engine::now_ms() - t0;
        int rc = a.mode == Mode::Text ? run_prompt(e, a)
               : a.mode == Mode::Chat ? run_chat(e, a)
               : a.mode == Mode::Soak ? run_soak(e, a)
                                      : run_benchmark(e, a, argv[0], load_ms, rss_before);
        edgebit_engine_close(e);
        return rc;
    } catch (const std::exception& x) {
        std::fflush(stdout);
        std::fprintf(stderr, "edgebit-runner: error: %s\n", x.what());
        edgebit_engine_close(e);
        return 2;
    }
}
