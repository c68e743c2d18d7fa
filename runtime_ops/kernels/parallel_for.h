// Internal: run n_tasks tasks on the pool described by `threads` (see edgebit_threading).
#ifndef EDGEBIT_PARALLEL_FOR_H
#define EDGEBIT_PARALLEL_FOR_H

#include "edgebit_kernels.h"

namespace edgebit {

void run_parallel(const edgebit_threading* threads, int64_t n_tasks, edgebit_task_fn task,
                  void* task_ctx);

}  // namespace edgebit

#endif  // EDGEBIT_PARALLEL_FOR_H
