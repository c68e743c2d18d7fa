// NEON dot-product variant (-march=armv8.2-a+dotprod; Pi 5, most phones since ~2018):
// the shared NEON block loops with SDOT products (neon_sdot.h).
// Selected only when getauxval(AT_HWCAP) reports HWCAP_ASIMDDP.
#include "neon_sdot.h"

namespace edgebit {

void tile_neon_dotprod(const TileArgs& a) { run_tiles<NeonMicro<SdotDot>>(a); }

}  // namespace edgebit
