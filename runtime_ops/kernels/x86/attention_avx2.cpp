// AVX2 decode attention: attention_body.h with 8-float compiler vectors, one ymm register each
// (this file alone is compiled with -mavx2). Bit-exact to scalar/attention_scalar.cpp.
#include "attention_vector_lanes.h"

namespace edgebit {

void attend_chunk_avx2(const AttnChunkArgs& a) { attn::attend_chunk<VectorLanes>(a); }

}  // namespace edgebit
