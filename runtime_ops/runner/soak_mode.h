// edgebit-runner --soak SECONDS: conversations until the context is full, again and again (sampled and greedy
// turns, cancels from another thread, resets), one JSON line per conversation with the process's RSS, its
// anonymous memory and the decode speed; `edgebit soak` draws them and judges drift.
#pragma once
#include "cli_args.h"

namespace edgebit_runner {

int run_soak(edgebit_engine* e, const Args& a);

}  // namespace edgebit_runner
