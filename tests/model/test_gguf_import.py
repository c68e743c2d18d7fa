"""GGUF files written by their publishers' tools (the gguf package's writer and quantizers; bitnet.cpp's I2_S layout
ported in tests/helpers/gguf_files.py) from the checkpoints the tests build, read by edgebit: the same ternary codes and
scales tensor by tensor as the checkpoint they came from, the same parameter counts in `edgebit inspect`, the same
greedy tokens from their ONNX exports, and the embedded tokenizer giving the same ids."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from gguf_files import write_gguf

from edgebit.model.checkpoint import LINEARS, layer_prefix, open_checkpoint
from edgebit.model.weights import ternary_codes

# (family, form, qtype, scales): every ternary type, both ways a converter stores the scale, both architectures.
CASES = [
    ("bitnet", "packed", "TQ2_0", "tensor"), ("bitnet", "packed", "TQ2_0", "blocks"),
    ("bitnet", "unpacked", "TQ1_0", "tensor"), ("bitnet", "packed", "TQ1_0", "blocks"),
    ("bitnet", "packed", "I2_S", "blocks"), ("bitnet", "unpacked", "F32", "blocks"),
    ("llama-bitnet", "packed", "TQ2_0", "blocks"), ("llama-bitnet", "unpacked", "TQ1_0", "tensor"),
    ("llama-bitnet", "packed", "I2_S", "blocks"),
]


def fp16(x: float) -> float:
    return float(np.float16(x))


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBIT_CACHE_DIR", str(tmp_path / "cache"))  # GGUF views stay in the test's tmp


def same_config(a, b):
    """Configs equal but for the quantization scheme (GGUF stores codes and a multiplying scale, whatever the
    source's quantization_config was) and the Llama 3 RoPE parameters, which llama.cpp keeps only as per-frequency
    factors: those are compared by the frequencies they give."""
    from edgebit.model.reference import rope_inv_freq

    freqs = [rope_inv_freq(c.head_dim, c.rope) for c in (a, b)]
    return dataclasses.replace(a, quant=b.quant, rope=b.rope) == b and torch.allclose(*freqs, rtol=1e-6, atol=0)


@pytest.mark.parametrize("family,form,qtype,scales", CASES)
def test_codes_and_scales_equal_the_source(family, form, qtype, scales, gguf_checkpoint, tmp_path):
    src = gguf_checkpoint(family, form)
    path = write_gguf(src, tmp_path / "m.gguf", qtype, scales=scales)
    with open_checkpoint(src) as a, open_checkpoint(path) as b:
        assert b.weight_form == "gguf" and same_config(a.config, b.config), (a.config, b.config)
        exact = scales == "tensor" or qtype in ("I2_S", "F32")  # TQ block scales are fp16
        for i in range(a.config.num_layers):
            for linear in LINEARS:
                name = layer_prefix(i) + linear
                (ca, ga), (cb, gb) = ternary_codes(a, name), ternary_codes(b, name)
                assert torch.equal(ca, cb), name
                assert float(gb) == (float(ga) if exact else fp16(float(ga))), (name, float(ga), float(gb))
            for norm in ("input_layernorm", "post_attention_layernorm"):
                assert torch.equal(a.read(layer_prefix(i) + norm + ".weight").float(),
                                   b.read(layer_prefix(i) + norm + ".weight"))
        embed = b.read("model.embed_tokens.weight")
        assert embed.dtype == torch.float16
        assert torch.equal(a.read("model.embed_tokens.weight").half(), embed)


@pytest.mark.parametrize("qtype", ["TQ1_0", "TQ2_0"])
def test_tq_decoding_equals_the_gguf_packages_dequantizer(qtype, gguf_checkpoint, tmp_path):
    """edgebit's own TQ decoders against gguf.quants.dequantize, tensor by tensor (llama's q/k rows permuted back)."""
    import gguf

    from edgebit.model.gguf.arch import permute_rows

    src = gguf_checkpoint("llama-bitnet", "packed")
    path = write_gguf(src, tmp_path / "m.gguf", qtype, scales="blocks")
    reader = gguf.GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    with open_checkpoint(path) as ckpt:
        cfg = ckpt.config
        for i in range(cfg.num_layers):
            for linear in LINEARS:
                codes, gamma = ternary_codes(ckpt, layer_prefix(i) + linear)
                ours = (codes.numpy().astype(np.float32) - 1) * float(gamma)
                t = tensors[ckpt.names[layer_prefix(i) + linear] + ".weight"]
                theirs = gguf.quants.dequantize(t.data, t.tensor_type)
                if linear.endswith(("q_proj", "k_proj")):
                    heads = cfg.num_heads if linear.endswith("q_proj") else cfg.num_kv_heads
                    theirs = permute_rows(theirs, heads, undo=True)
                np.testing.assert_array_equal(ours, theirs)


def test_i2s_file_matches_bitnet_cpp_layout(gguf_checkpoint, tmp_path):
    """An I2_S tensor's bytes, decoded by hand from the documented layout (not by edgebit's decoder), hold the
    source's codes; edgebit's decoder agrees."""
    import gguf

    from gguf_files import hf_ternary

    src = gguf_checkpoint("bitnet", "packed")
    path = write_gguf(src, tmp_path / "m.gguf", "I2_S")
    with open_checkpoint(path) as ckpt:
        raw = ckpt.file.read("blk.1.ffn_down.weight")
        n, k = ckpt.file.tensors["blk.1.ffn_down.weight"].shape
        codes_ref = np.empty(n * k, dtype=np.uint8)
        for idx in range(n * k):
            block, j = divmod(idx, 128)
            codes_ref[idx] = (raw[block * 32 + j % 32] >> (6 - 2 * (j // 32))) & 3
        w_t, gamma = hf_ternary(src)["model.layers.1.mlp.down_proj"]
        np.testing.assert_array_equal(codes_ref.reshape(n, k), w_t + 1)
        assert raw[n * k // 4: n * k // 4 + 4].view(np.float32)[0] == np.float32(gamma)
        codes, g = ternary_codes(ckpt, "model.layers.1.mlp.down_proj")
        np.testing.assert_array_equal(codes.numpy(), w_t + 1)
    assert gguf.GGMLQuantizationType.TQ2_0 == 35  # I2_S's 36 is unassigned upstream (see reader.I2_S)


@pytest.mark.parametrize("embed", ["F32", "Q8_0", "Q6_K"])
def test_embedding_types(embed, gguf_checkpoint, tmp_path):
    import gguf

    src = gguf_checkpoint("bitnet", "packed")
    path = write_gguf(src, tmp_path / "m.gguf", "TQ2_0", scales="tensor", embed=embed)
    reader = {t.name: t for t in gguf.GGUFReader(path).tensors}
    with open_checkpoint(path) as ckpt:
        table = ckpt.read("model.embed_tokens.weight")
        t = reader["token_embd.weight"]
        expected = gguf.quants.dequantize(t.data, t.tensor_type)
        np.testing.assert_array_equal(table.float().numpy(), expected)
        if embed == "Q8_0":  # close to the source table, as Q8_0 is
            source = open_checkpoint(src).read("model.embed_tokens.weight").float().numpy()
            assert np.abs(expected - source).max() <= np.abs(source).max() / 100


def test_inspect_shows_the_same_parameter_counts(gguf_checkpoint, tmp_path, cli):
    src = gguf_checkpoint("bitnet", "packed")
    path = write_gguf(src, tmp_path / "m.gguf", "TQ1_0")
    a, b = (json.loads(cli("inspect", p, "--json").stdout) for p in (src, path))
    for key in ("ternary_params", "float_params", "total_params", "zero_fraction", "linear_shapes"):
        assert a[key] == b[key], key
    assert b["weight_form"] == "gguf" and b["path"] == str(path.resolve())


@pytest.mark.parametrize("qtype", ["TQ1_0", "TQ2_0", "I2_S"])
def test_onnx_export_of_the_gguf_generates_the_same_tokens(qtype, gguf_checkpoint, tmp_path, cli):
    src = gguf_checkpoint("bitnet", "packed")
    path = write_gguf(src, tmp_path / "m.gguf", qtype, scales="tensor")
    outs = []
    for i, model in enumerate((src, path)):
        art = tmp_path / f"art{i}"
        assert cli("export", "onnx", model, "-o", art, "--max-seq-len", "64").returncode == 0
        run = cli("run", art, "--prompt", "And God said", "--max-new-tokens", "12", "--json")
        assert run.returncode == 0, run.stderr
        outs.append(json.loads(run.stdout))
    assert outs[0]["prompt_ids"] == outs[1]["prompt_ids"]  # the GGUF's tokenizer, converted, tokenizes alike
    assert outs[0]["generated_ids"] == outs[1]["generated_ids"]
    manifest = json.loads((tmp_path / "art1" / "manifest.json").read_text())
    assert manifest["source"]["gguf"] == str(path.resolve())
    # verify finds the GGUF again through the manifest (its view rebuilt in a fresh cache) and holds the artifact to
    # it; random weights make the logit bound meaningless here (the same holds for the safetensors export).
    report = json.loads(cli("verify", tmp_path / "art1", "--json").stdout)
    assert (Path(report["reference"]) / "model.gguf").resolve() == path.resolve()
    assert report["top1_agreement"] >= 0.98 and report["perplexity_rel_diff"] < 0.01


@pytest.mark.parametrize("kind", ["gpt2", "llama3"])
def test_embedded_tokenizer_gives_the_same_ids(kind, gguf_checkpoint, tmp_path):
    from tokenizers import Tokenizer

    from edgebit.model.gguf.reader import GGUFFile
    from edgebit.model.gguf.vocab import tokenizer_from_gguf

    src = gguf_checkpoint("bitnet", "packed", tokenizer=kind)
    path = write_gguf(src, tmp_path / "m.gguf", "TQ2_0")
    original = Tokenizer.from_file(str(src / "tokenizer.json"))
    with GGUFFile(path) as g:
        text, config = tokenizer_from_gguf(g)
    converted = Tokenizer.from_str(text)
    samples = ["In the beginning God created the heaven", "  two  spaces, 1234567 digits; ünïcödé\n\nnew lines",
               "<s>special</s> inline <|eot|> too", "'ll 've 'S ALL CAPS", ""]
    for s in samples:
        assert converted.encode(s).ids == original.encode(s).ids, s
        assert converted.decode(converted.encode(s).ids) == original.decode(original.encode(s).ids)
    template = json.loads((src / "tokenizer_config.json").read_text())["chat_template"]
    assert config["chat_template"] == template and config["bos_token"] == "<s>" and config["eos_token"] == "</s>"


def test_one_bit_llm_as_bitnet_architecture(onebit_checkpoint, tmp_path):
    """1bitLLM's BitnetForCausalLM as llama.cpp converts it (arch "bitnet", SiLU, untied output.weight), in I2_S
    (its 128-wide layers are not whole TQ blocks)."""
    src, _ = onebit_checkpoint()
    path = write_gguf(src, tmp_path / "m.gguf", "I2_S", arch="bitnet", tokenizer=False)
    with open_checkpoint(src) as a, open_checkpoint(path) as b:
        assert b.config.activation == "silu" and not b.config.tie_word_embeddings
        assert dataclasses.replace(a.config, quant=b.config.quant, family="bitnet") == b.config
        for linear in LINEARS:
            (ca, ga), (cb, gb) = ternary_codes(a, layer_prefix(0) + linear), ternary_codes(b, layer_prefix(0) + linear)
            assert torch.equal(ca, cb)
            assert abs(float(ga) - float(gb)) <= 1e-7 * float(ga)  # the converter's 1 / (1 / mean|W|)
        assert torch.equal(a.read("lm_head.weight").half(), b.read("lm_head.weight"))


def test_unconvertible_tokenizer_is_named_where_text_is_needed(gguf_checkpoint, tmp_path, cli):
    """A GGUF whose tokenizer edgebit cannot run (here: SentencePiece) still inspects and exports; the commands that
    need text say which metadata key is the problem."""
    import gguf

    from gguf_files import write_gguf

    path = write_gguf(gguf_checkpoint("bitnet", "packed"), tmp_path / "m.gguf", "TQ2_0", tokenizer=False)
    spm = tmp_path / "spm.gguf"
    r = gguf.GGUFReader(path)
    w = gguf.GGUFWriter(spm, "bitnet-25")
    for name, f in r.fields.items():
        if not name.startswith("GGUF.") and name != "general.architecture":
            sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
            w.add_key_value(name, f.contents(), f.types[0], sub)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"<0x{i:02X}>" for i in range(300)])
    for t in r.tensors:
        w.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    assert cli("inspect", spm).returncode == 0
    for args in (("inspect", spm, "--check"), ("generate", spm, "--prompt", "x")):
        r = cli(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert "tokenizer.ggml.model" in r.stderr and "'llama'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert cli("export", "onnx", spm, "-o", tmp_path / "art", "--max-seq-len", "32").returncode == 0
    assert not (tmp_path / "art" / "tokenizer.json").exists()


@pytest.mark.parametrize("theta,head_dim,rope", [
    (500000.0, 128, dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192)),
    (500000.0, 32, dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=64)),
    (10000.0, 16, dict(factor=4.0, low_freq_factor=1.0, high_freq_factor=1.5, original_max_position_embeddings=32)),
])
def test_llama3_rope_recovered_from_llama_cpps_factors(theta, head_dim, rope):
    """Llama 3.1's own parameters (many smoothed frequencies), the test fixture's (one) and a case with none: the
    parameters edgebit recovers from convert_hf_to_gguf's rope_freqs give the same frequencies."""
    from types import SimpleNamespace

    from gguf_files import llama3_rope_factors

    from edgebit.model.config import RopeConfig
    from edgebit.model.gguf.arch import rope_config
    from edgebit.model.reference import rope_inv_freq

    factors = llama3_rope_factors({**rope, "rope_theta": theta}, theta, head_dim)
    g = SimpleNamespace(kv={"general.architecture": "llama"}, path="x.gguf")
    got = rope_config(g, theta, head_dim, factors)
    want = RopeConfig(theta, "llama3", rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"],
                      rope["original_max_position_embeddings"])
    torch.testing.assert_close(rope_inv_freq(head_dim, got), rope_inv_freq(head_dim, want), rtol=1e-6, atol=0)


def test_a_directory_holding_one_gguf_is_a_model(gguf_checkpoint, tmp_path, cli):
    """A GGUF repo snapshot (one .gguf, no config.json) is a MODEL; two .gguf files are refused by name."""
    import shutil

    from gguf_files import write_gguf

    repo = tmp_path / "repo"
    repo.mkdir()
    write_gguf(gguf_checkpoint("bitnet", "packed"), repo / "ggml-model-i2_s.gguf", "I2_S")
    assert cli("inspect", repo).returncode == 0
    shutil.copy(repo / "ggml-model-i2_s.gguf", repo / "ggml-model-tq2_0.gguf")
    r = cli("inspect", repo)
    assert r.returncode == 2 and "2 GGUF files" in r.stderr and "give the one" in r.stderr
