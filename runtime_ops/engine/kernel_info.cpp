#include "kernel_info.h"

#include "edgebit_kernels.h"
#include "json.h"

namespace edgebit::engine {

std::string kernel_variant() {
    const char* kv = edgebit_kernel_variant();
    return kv ? kv : "unknown";
}

std::string cpu_features_json() {
    std::string o = "[";
    for (int i = 0; i < edgebit_variant_count(); ++i) {
        const char* n = edgebit_variant_name(i);
        if (n && edgebit_variant_supported(n)) o += (o.size() > 1 ? ", " : "") + json_quote(n);
    }
    return o + "]";
}

}  // namespace edgebit::engine
