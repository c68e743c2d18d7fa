// edgebit-runner's text modes: --prompt (stream one completion) and --chat (an interactive loop over stdin).
#pragma once
#include "cli_args.h"
#include "edgebit_engine.h"

namespace edgebit_runner {

int run_prompt(edgebit_engine* e, const Args& a);
int run_chat(edgebit_engine* e, const Args& a);

}  // namespace edgebit_runner
