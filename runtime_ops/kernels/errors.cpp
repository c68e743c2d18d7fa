// Thread-local error messages: a failing call on one thread must not overwrite the message
// another thread is about to read.
#include <stdarg.h>
#include <stdio.h>

#include "edgebit_kernels.h"
#include "kernel_variant.h"

namespace edgebit {
namespace {
thread_local char g_message[512] = "";
}

int set_error(int status, const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(g_message, sizeof(g_message), fmt, args);
    va_end(args);
    return status;
}

}  // namespace edgebit

extern "C" {

const char* edgebit_last_error(void) { return edgebit::g_message; }

const char* edgebit_status_string(int status) {
    switch (status) {
        case EDGEBIT_OK: return "ok";
        case EDGEBIT_ERR_NULL_POINTER: return "null pointer argument";
        case EDGEBIT_ERR_BAD_SHAPE: return "bad shape";
        // Layout v1's error, kept for ABI; layout v2 pads K, so no entry point returns it.
        case EDGEBIT_ERR_K_NOT_MULTIPLE: return "K is not a multiple of 128 (layout v1 only)";
        case EDGEBIT_ERR_UNKNOWN_VARIANT: return "unknown kernel variant";
        case EDGEBIT_ERR_VARIANT_NOT_BUILT: return "kernel variant not compiled in";
        case EDGEBIT_ERR_VARIANT_UNSUPPORTED: return "kernel variant not supported by this CPU";
        case EDGEBIT_ERR_OUT_OF_MEMORY: return "out of memory";
        case EDGEBIT_ERR_INTERNAL: return "internal error";
        default: return "unknown status";
    }
}

int edgebit_layout_version(void) { return EDGEBIT_LAYOUT_VERSION; }

}  // extern "C"
