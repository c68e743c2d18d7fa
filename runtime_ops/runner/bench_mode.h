// edgebit-runner's benchmark mode: fixed-length greedy runs from ids, timed, printed as one JSON object (the
// object `edgebit profile` collects from every device).
#pragma once
#include "cli_args.h"
#include "edgebit_engine.h"

namespace edgebit_runner {

int run_benchmark(edgebit_engine* e, const Args& a, const char* argv0, double load_ms, long long rss_before);

}  // namespace edgebit_runner
