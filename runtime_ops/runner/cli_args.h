// edgebit-runner's command line: options, their ranges, and the usage text.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "edgebit_engine.h"

namespace edgebit_runner {

enum class Mode { Text, Chat, Bench, Soak };

struct Args {
    Mode mode = Mode::Bench;
    std::string artifact;
    int threads = 0;
    bool json = false;
    std::string prompt, system;
    std::vector<int32_t> prompt_ids;
    int64_t prompt_len = 16, gen_len = 16;  // benchmark mode
    int runs = 3, warmup = 1;
    uint64_t seed = 0;
    edgebit_sampling sampling{};
    std::string op_library;  // "" = the artifact's own
    std::string profile;
    int32_t verify = EDGEBIT_VERIFY_CACHED;  // --verify cached|full|off, --no-verify
    int64_t max_memory_mb = 0;               // --max-memory MB; 0 = no limit
    double soak_seconds = 0;                 // --soak SECONDS
};

extern const char* const kUsage;
Args parse_args(int argc, char** argv);  // usage errors: message + usage on stderr, exit 1

}  // namespace edgebit_runner
