// The split patterns of byte-level BPE tokenizers, matched by hand with the exact semantics of the backtracking
// regex engines `tokenizers` uses (Oniguruma), so no regex library is needed on the device:
//   GPT-2 (ByteLevel use_regex):  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Llama 3 (Split, Isolated):    (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//                                 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Input must be valid UTF-8; the result is the byte lengths of consecutive pieces covering it.
#pragma once
#include <string>
#include <vector>

namespace edgebit::engine {

enum class SplitPattern { Gpt2, Llama3 };

// The pattern a tokenizer.json regex string is, or false when it is neither (the engine then refuses the file).
bool recognise_split_pattern(const std::string& regex, SplitPattern* out);

void split_pieces(SplitPattern p, const std::string& text, std::vector<size_t>* piece_lengths);

}  // namespace edgebit::engine
