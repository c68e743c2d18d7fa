// armv8.0 NEON quantized linear (widening multiplies).
#include "qlinear_neon.h"

namespace edgebit {

void qtile_neon(const QTileArgs& a) { run_qtiles<NeonQ<MullDot>>(a); }

}  // namespace edgebit
