"""A GGUF file's embedded tokenizer <-> tokenizer.json (HF tokenizers), for byte-level BPE ("gpt2") vocabularies.

GGUF keeps tokenizer.ggml.{model, pre, tokens, token_type, merges, bos/eos/eot_token_id, add_bos_token,
add_space_prefix} and tokenizer.chat_template. llama.cpp chooses its pre-tokenizer regex by the `pre` name
(llama-vocab.cpp);
edgebit maps the two regexes its engine implements (GPT-2's and Llama 3's, runtime_ops/engine/pretokenize.cpp) and
refuses the rest by name, as it refuses SentencePiece ("llama") vocabularies: the engine runs byte-level BPE only.
"""

from __future__ import annotations

import json

from edgebit.errors import CheckpointError

GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
# llama.cpp's `pre` names (llama-vocab.cpp) whose pre-tokenizer is exactly one of the two; llama3-type ones also
# ignore merges for whole-word vocabulary hits and add BOS by default, as HF's Llama 3 tokenizer.json does.
GPT2_PRES = ("gpt-2",)
LLAMA3_PRES = ("llama-bpe", "llama3", "llama-v3", "falcon3")
NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5
K = "tokenizer.ggml."


def _key(g, name: str, kind, what: str):
    value = g.kv.get(K + name)
    if value is None:
        raise CheckpointError(f"{g.path}: metadata '{K}{name}' is missing; a tokenizer.json needs {what}")
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise CheckpointError(f"{g.path}: metadata '{K}{name}' has the wrong type ({type(value).__name__})")
    return value


def tokenizer_from_gguf(g) -> tuple[str, dict]:
    """(tokenizer.json text, tokenizer_config.json dict) of GGUF file G; CheckpointError naming what is missing."""
    from edgebit.model.gguf.reader import STRING, GGUFArray

    model = _key(g, "model", str, "the tokenizer model")
    if model != "gpt2":
        raise CheckpointError(f"{g.path}: metadata '{K}model' is {model!r}; edgebit reads byte-level BPE ('gpt2') "
                              "tokenizers only (its engine runs no SentencePiece)")
    pre = g.kv.get(K + "pre", "default")
    if pre not in GPT2_PRES + LLAMA3_PRES:
        raise CheckpointError(f"{g.path}: metadata '{K}pre' is {pre!r}; edgebit knows the pre-tokenizers of "
                              f"{', '.join(GPT2_PRES + LLAMA3_PRES)} (GPT-2's and Llama 3's regex)")
    arrays = {}
    for name, what in (("tokens", "the vocabulary"), ("merges", "the BPE merges")):
        ref = _key(g, name, GGUFArray, what)
        if ref.item_type != STRING:
            raise CheckpointError(f"{g.path}: metadata '{K}{name}' is not an array of strings")
        arrays[name] = g.array(K + name)
    tokens, merges = arrays["tokens"], arrays["merges"]
    types = g.array(K + "token_type") if isinstance(g.kv.get(K + "token_type"), GGUFArray) else None
    if types is not None and len(types) != len(tokens):
        raise CheckpointError(f"{g.path}: metadata '{K}token_type' has {len(types)} entries for {len(tokens)} tokens")
    vocab: dict[str, int] = {}
    for i, t in enumerate(tokens):
        if t in vocab:
            raise CheckpointError(f"{g.path}: metadata '{K}tokens': token {t!r} appears at ids {vocab[t]} and {i}")
        vocab[t] = i
    pairs = []
    for j, m in enumerate(merges):
        a, sep, b = m.partition(" ")
        if not sep or a not in vocab or b not in vocab:
            raise CheckpointError(f"{g.path}: metadata '{K}merges'[{j}] {m!r} is not two vocabulary tokens")
        pairs.append((a, b))
    llama3 = pre in LLAMA3_PRES
    add_prefix = bool(g.kv.get(K + "add_space_prefix", False))
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, ignore_merges=llama3))
    if llama3:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    if types is not None:
        kinds = {CONTROL: True, USER_DEFINED: False}
        tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                                for i in range(len(tokens)) if types[i] == CONTROL])
        tok.add_tokens([AddedToken(tokens[i], special=False, normalized=False)
                        for i in range(len(tokens)) if kinds.get(int(types[i])) is False])
    specials = {}
    for name in ("bos", "eos"):
        tid = g.kv.get(f"{K}{name}_token_id")
        if isinstance(tid, int) and not isinstance(tid, bool):
            if not 0 <= tid < len(tokens):
                raise CheckpointError(f"{g.path}: metadata '{K}{name}_token_id' {tid} is outside the "
                                      f"{len(tokens)}-token vocabulary")
            specials[name] = tid
    add_bos = bool(g.kv.get(K + "add_bos_token", llama3)) and "bos" in specials
    add_eos = bool(g.kv.get(K + "add_eos_token", False)) and "eos" in specials
    if add_bos or add_eos:
        used = [n for n, on in (("bos", add_bos), ("eos", add_eos)) if on]

        def seq(x: str) -> list[str]:
            return ([tokens[specials["bos"]]] if add_bos else []) + [x] + ([tokens[specials["eos"]]] if add_eos else [])

        tok.post_processor = processors.TemplateProcessing(single=seq("$A"), pair=seq("$A") + seq("$B"),
                                                           special_tokens=[(tokens[specials[n]], specials[n])
                                                                           for n in used])
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": add_bos}
    if add_eos:
        config["add_eos_token"] = True
    for name, tid in specials.items():
        config[f"{name}_token"] = tokens[tid]
    template = g.kv.get("tokenizer.chat_template")
    if isinstance(template, str) and template.strip():
        config["chat_template"] = template
    return tok.to_str(), config


def gguf_pre_tokenizer(tokenizer_json: dict, path) -> tuple[str, bool]:
    """(tokenizer.ggml.pre, add_space_prefix) for a tokenizer.json edgebit can carry into GGUF, else a refusal
    naming the part llama.cpp could not reproduce."""
    model = tokenizer_json.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise CheckpointError(f"{path}: model: only byte-level BPE tokenizers (no byte_fallback) go into GGUF")
    if tokenizer_json.get("normalizer") is not None:
        raise CheckpointError(f"{path}: normalizer: llama.cpp's BPE tokenizer applies none")
    if (tokenizer_json.get("decoder") or {}).get("type") != "ByteLevel":
        raise CheckpointError(f"{path}: decoder: expected ByteLevel")
    pre = tokenizer_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [s.get("type") for s in steps]
    ignore_merges = bool(model.get("ignore_merges"))
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True) and not ignore_merges:
        return "gpt-2", bool(steps[0].get("add_prefix_space", True))
    if (kinds == ["Split", "ByteLevel"] and (steps[0].get("pattern") or {}).get("Regex") == LLAMA3_REGEX
            and steps[0].get("behavior") == "Isolated" and not steps[0].get("invert")
            and not steps[1].get("use_regex", True) and not steps[1].get("add_prefix_space", True) and ignore_merges):
        return "llama-bpe", False
    raise CheckpointError(f"{path}: pre_tokenizer {json.dumps(pre)[:120]} (ignore_merges {ignore_merges}) is not "
                          "GPT-2's or Llama 3's byte-level BPE, the two llama.cpp pre-tokenizers edgebit maps")


def gguf_tokens(tokenizer_json: dict, vocab_size: int, path) -> tuple[list[str], list[int]]:
    """Token strings and types by id, padded to the model's vocab_size as convert_hf_to_gguf pads ([PAD<id>])."""
    by_id: dict[int, str] = {i: t for t, i in (tokenizer_json["model"].get("vocab") or {}).items()}
    types = {}
    for added in tokenizer_json.get("added_tokens") or []:
        by_id[added["id"]] = added["content"]
        types[added["id"]] = CONTROL if added.get("special") else USER_DEFINED
    if by_id and max(by_id) >= vocab_size:
        raise CheckpointError(f"{path}: token id {max(by_id)} is outside the model's {vocab_size}-row embedding")
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(vocab_size)]
    kinds = [types.get(i, NORMAL if i in by_id else UNUSED) for i in range(vocab_size)]
    return tokens, kinds
