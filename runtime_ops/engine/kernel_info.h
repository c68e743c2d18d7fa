// What the linked kernel core reports (kept out of engine.cpp: edgebit_kernels.h and edgebit_engine.h both name
// a status EDGEBIT_OK, so no file includes both).
#pragma once
#include <string>

namespace edgebit::engine {

std::string kernel_variant();      // the variant the core dispatches to on this CPU
std::string cpu_features_json();   // JSON list of the variants this CPU can run

}  // namespace edgebit::engine
