// NEON decode attention: attention_body.h with 8-float compiler vectors, two q registers each. Used by
// every ARM variant (neon, neon_dotprod, neon_i8mm): the work is float. Bit-exact to the scalar file.
#include "attention_vector_lanes.h"

namespace edgebit {

void attend_chunk_neon(const AttnChunkArgs& a) { attn::attend_chunk<VectorLanes>(a); }

}  // namespace edgebit
