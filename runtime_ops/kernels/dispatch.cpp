// Variant table and selection. The table lists compiled variants in increasing preference;
// automatic choice takes the last one the CPU supports, and "scalar" (first, always
// compiled) ends every chain. EDGEBIT_KERNEL=<name> is read once, at first use; naming a
// variant that cannot run here makes every compute call fail with a clear status rather
// than silently measuring or testing a different variant.
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <string>

#include "edgebit_kernels.h"
#include "kernel_variant.h"

namespace edgebit {
namespace {

bool always() { return true; }

const KernelVariant kVariants[] = {
    {"scalar", always, tile_scalar},
#if defined(EDGEBIT_HAVE_AVX2)
    {"avx2", cpu_has_avx2, tile_avx2},
#endif
#if defined(EDGEBIT_HAVE_AVX512VNNI)
    {"avx512vnni", cpu_has_avx512vnni, tile_avx512vnni},
#endif
#if defined(EDGEBIT_HAVE_NEON)
    {"neon", cpu_has_neon, tile_neon},
#endif
#if defined(EDGEBIT_HAVE_NEON_DOTPROD)
    {"neon_dotprod", cpu_has_neon_dotprod, tile_neon_dotprod},
#endif
#if defined(EDGEBIT_HAVE_NEON_I8MM)
    {"neon_i8mm", cpu_has_neon_i8mm, tile_neon_i8mm},
#endif
};
constexpr int kNumVariants = sizeof(kVariants) / sizeof(kVariants[0]);

// Every name edgebit knows on any architecture, to tell "typo" from "not built here".
const char* const kKnownNames[] = {"scalar", "avx2", "avx512vnni",
                                   "neon", "neon_dotprod", "neon_i8mm"};

std::string join_names(bool supported_only) {
    std::string s;
    for (const KernelVariant& v : kVariants) {
        if (supported_only && !v.cpu_supports()) continue;
        if (!s.empty()) s += ", ";
        s += v.name;
    }
    return s;
}

const KernelVariant* best_supported() {
    const KernelVariant* best = &kVariants[0];
    for (const KernelVariant& v : kVariants)
        if (v.cpu_supports()) best = &v;
    return best;
}

// Looks `name` up; on failure sets the thread's error message and *status.
const KernelVariant* resolve(const char* name, const char* origin, int* status) {
    bool known = false;
    for (const char* k : kKnownNames) known = known || strcmp(k, name) == 0;
    if (!known) {
        *status = set_error(EDGEBIT_ERR_UNKNOWN_VARIANT,
                            "%s: unknown kernel variant '%s' (compiled here: %s)", origin, name,
                            join_names(false).c_str());
        return nullptr;
    }
    for (const KernelVariant& v : kVariants) {
        if (strcmp(v.name, name) != 0) continue;
        if (!v.cpu_supports()) {
            *status = set_error(EDGEBIT_ERR_VARIANT_UNSUPPORTED,
                                "%s: kernel variant '%s' is compiled in but this CPU lacks its "
                                "instructions (usable here: %s)",
                                origin, name, join_names(true).c_str());
            return nullptr;
        }
        *status = EDGEBIT_OK;
        return &v;
    }
    *status = set_error(EDGEBIT_ERR_VARIANT_NOT_BUILT,
                        "%s: kernel variant '%s' is not compiled into this build for this "
                        "architecture (compiled here: %s)",
                        origin, name, join_names(false).c_str());
    return nullptr;
}

// The choice made at load: automatic, or from EDGEBIT_KERNEL.
struct InitialSelection {
    const KernelVariant* variant = nullptr;
    int status = EDGEBIT_OK;
    std::string message;
};

const InitialSelection& initial_selection() {
    static const InitialSelection sel = [] {
        InitialSelection s;
        const char* env = getenv("EDGEBIT_KERNEL");
        if (env == nullptr || env[0] == '\0' || strcmp(env, "auto") == 0) {
            s.variant = best_supported();
            return s;
        }
        s.variant = resolve(env, "EDGEBIT_KERNEL", &s.status);
        if (s.variant == nullptr) s.message = edgebit_last_error();
        return s;
    }();
    return sel;
}

// Set by edgebit_force_variant; overrides the initial selection.
std::atomic<const KernelVariant*> g_forced{nullptr};

}  // namespace

const KernelVariant* active_variant(int* status) {
    if (const KernelVariant* v = g_forced.load(std::memory_order_acquire)) {
        *status = EDGEBIT_OK;
        return v;
    }
    const InitialSelection& sel = initial_selection();
    if (sel.variant == nullptr) {
        *status = set_error(sel.status, "%s", sel.message.c_str());
        return nullptr;
    }
    *status = EDGEBIT_OK;
    return sel.variant;
}

}  // namespace edgebit

extern "C" {

const char* edgebit_kernel_variant(void) {
    int status = 0;
    const edgebit::KernelVariant* v = edgebit::active_variant(&status);
    return v ? v->name : "none";
}

int edgebit_force_variant(const char* name) {
    using namespace edgebit;
    if (name == nullptr || strcmp(name, "auto") == 0) {
        g_forced.store(best_supported(), std::memory_order_release);
        return EDGEBIT_OK;
    }
    int status = 0;
    const KernelVariant* v = resolve(name, "edgebit_force_variant", &status);
    if (v == nullptr) return status;
    g_forced.store(v, std::memory_order_release);
    return EDGEBIT_OK;
}

int edgebit_variant_count(void) { return edgebit::kNumVariants; }

const char* edgebit_variant_name(int index) {
    if (index < 0 || index >= edgebit::kNumVariants) return nullptr;
    return edgebit::kVariants[index].name;
}

int edgebit_variant_supported(const char* name) {
    if (name == nullptr) return 0;
    for (const edgebit::KernelVariant& v : edgebit::kVariants)
        if (strcmp(v.name, name) == 0) return v.cpu_supports() ? 1 : 0;
    return 0;
}

}  // extern "C"
