"""`edgebit export gguf`: the file round-trips through edgebit's GGUF reader bit for bit, the gguf package (llama.cpp's
own reader and dequantizers) reads every tensor and its dequantized TQ weights equal edgebit's ternary weights times
their scales, the tokenizer and chat template are carried, and what llama.cpp cannot represent is refused in one
line."""

import dataclasses
import json

import gguf
import numpy as np
import pytest
import torch

from edgebit.model.checkpoint import LINEARS, layer_prefix, open_checkpoint
from edgebit.model.gguf.arch import permute_rows
from edgebit.model.weights import ternary_codes


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBIT_CACHE_DIR", str(tmp_path / "cache"))


def export(model, out, qtype="tq2_0"):
    from edgebit.exporters.gguf.export import export_gguf

    return export_gguf(model, out, qtype)


@pytest.mark.parametrize("family,qtype", [("bitnet", "tq2_0"), ("bitnet", "tq1_0"), ("llama-bitnet", "tq2_0"),
                                          ("llama-bitnet", "tq1_0")])
def test_round_trip_through_edgebits_reader(family, qtype, gguf_checkpoint, tmp_path):
    src = gguf_checkpoint(family, "packed")
    path = export(src, tmp_path / "m.gguf", qtype)
    with open_checkpoint(src) as a, open_checkpoint(path) as b:
        assert b.config == dataclasses.replace(a.config, quant=b.config.quant)
        for i in range(a.config.num_layers):
            for linear in LINEARS:
                name = layer_prefix(i) + linear
                (ca, ga), (cb, gb) = ternary_codes(a, name), ternary_codes(b, name)
                assert torch.equal(ca, cb), name
                # bitnet: the exact fp32 gamma in a .scale tensor; llama: gamma in the fp16 TQ block scales
                want = float(ga) if family == "bitnet" else float(np.float16(float(ga)))
                assert float(gb) == want, (name, float(ga), float(gb))
            for norm in ("input_layernorm", "post_attention_layernorm"):
                hf = layer_prefix(i) + norm + ".weight"
                assert torch.equal(a.read(hf).float(), b.read(hf))
        for hf in ["model.embed_tokens.weight", "model.norm.weight"]:
            ta, tb = a.read(hf), b.read(hf)
            assert ta.dtype == tb.dtype and torch.equal(ta, tb), hf
    from edgebit.model.hub import resolve_checkpoint

    # Exported again from the GGUF itself (through its view: tokenizer beside it): the same tensors, byte for byte,
    # and the same metadata but for the name.
    again = gguf.GGUFReader(export(resolve_checkpoint(path), tmp_path / "again.gguf", qtype))
    first = gguf.GGUFReader(path)
    assert [(t.name, t.tensor_type, t.data.tobytes()) for t in again.tensors] == \
           [(t.name, t.tensor_type, t.data.tobytes()) for t in first.tensors]
    fields = lambda r: {k: f.contents() for k, f in r.fields.items() if k != "general.name"}  # noqa: E731
    assert fields(again) == fields(first)


@pytest.mark.parametrize("family", ["bitnet", "llama-bitnet"])
def test_gguf_package_dequantizes_edgebits_ternary_weights(family, gguf_checkpoint, tmp_path):
    src = gguf_checkpoint(family, "packed")
    path = export(src, tmp_path / "m.gguf", "tq2_0")
    tensors = {t.name: t for t in gguf.GGUFReader(path).tensors}
    arch = "bitnet" if family == "bitnet" else "llama"
    reader = gguf.GGUFReader(path)
    assert reader.fields["general.architecture"].contents() == arch
    with open_checkpoint(src) as ckpt:
        cfg = ckpt.config
        for i in range(cfg.num_layers):
            for linear, g in zip(LINEARS, ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                                           "ffn_down")):
                codes, gamma = ternary_codes(ckpt, layer_prefix(i) + linear)
                t = tensors[f"blk.{i}.{g}.weight"]
                assert t.tensor_type == gguf.GGMLQuantizationType.TQ2_0
                theirs = gguf.quants.dequantize(t.data, t.tensor_type)
                if arch == "bitnet":
                    theirs = theirs * tensors[f"blk.{i}.{g}.scale"].data[0]
                    ours = (codes.numpy().astype(np.float32) - 1) * np.float32(gamma)
                else:
                    if g in ("attn_q", "attn_k"):  # llama.cpp's converter interleaves q/k rows; so does the export
                        theirs = permute_rows(theirs, cfg.num_heads if g == "attn_q" else cfg.num_kv_heads, undo=True)
                    ours = (codes.numpy().astype(np.float32) - 1) * np.float32(np.float16(float(gamma)))
                np.testing.assert_array_equal(ours, theirs)


def test_tokenizer_and_chat_template_are_carried(gguf_checkpoint, tmp_path):
    from tokenizers import Tokenizer

    src = gguf_checkpoint("bitnet", "packed", tokenizer="llama3")
    path = export(src, tmp_path / "m.gguf")
    fields = gguf.GGUFReader(path).fields
    assert fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert fields["tokenizer.ggml.pre"].contents() == "llama-bpe"
    template = json.loads((src / "tokenizer_config.json").read_text())["chat_template"]
    assert fields["tokenizer.chat_template"].contents() == template
    assert fields["tokenizer.ggml.bos_token_id"].contents() == 0 and fields["tokenizer.ggml.add_bos_token"].contents()
    from edgebit.model.hub import resolve_checkpoint

    view = resolve_checkpoint(path)
    original, back = (Tokenizer.from_file(str(d / "tokenizer.json")) for d in (src, view))
    for text in ["And God said, Let there be light", "numbers 12345 and  spaces\n\n", "<s>x</s><|eot|>"]:
        assert back.encode(text).ids == original.encode(text).ids


def test_cli_export_is_atomic_and_refuses_to_overwrite(gguf_checkpoint, tmp_path, cli):
    src = gguf_checkpoint("bitnet", "packed")
    out = tmp_path / "m.gguf"
    r = cli("export", "gguf", src, "-o", out, "--type", "tq1_0")
    assert r.returncode == 0, r.stderr
    assert gguf.GGUFReader(out).fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_TQ1_0
    r = cli("export", "gguf", src, "-o", out)
    assert r.returncode == 2 and "already exists" in r.stderr and "--force" in r.stderr
    assert cli("export", "gguf", src, "-o", out, "--force").returncode == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers
    r = cli("export", "gguf", src, "-o", out, "--type", "q4_0")
    assert r.returncode == 2 and "--type" in r.stderr
    r = cli("inspect", out, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["weight_form"] == "gguf"


def test_export_from_an_i2s_gguf(gguf_checkpoint, tmp_path):
    """A bitnet.cpp I2_S file in, a llama.cpp TQ2_0 file out, the ternary weights and scales unchanged."""
    from gguf_files import write_gguf

    src = write_gguf(gguf_checkpoint("bitnet", "packed"), tmp_path / "i2s.gguf", "I2_S")
    from edgebit.model.hub import resolve_checkpoint

    out = export(resolve_checkpoint(src), tmp_path / "tq2.gguf")
    with open_checkpoint(src) as a, open_checkpoint(out) as b:
        for linear in LINEARS:
            (ca, ga), (cb, gb) = (ternary_codes(c, layer_prefix(1) + linear) for c in (a, b))
            assert torch.equal(ca, cb) and float(ga) == float(gb)
    assert gguf.GGUFReader(out).fields["general.architecture"].contents() == "bitnet"
    assert src.stat().st_size < out.stat().st_size  # I2_S: 2 bits a weight; TQ2_0: 2.0625 plus the scales


def one_line_error(r) -> str:
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_what_llama_cpp_cannot_represent_is_refused(hf_checkpoint, gguf_checkpoint, tmp_path, cli):
    untied = gguf_checkpoint("bitnet", "packed", tie=False)
    line = one_line_error(cli("export", "gguf", untied, "-o", tmp_path / "a.gguf"))
    assert "untied" in line and "token_embd" in line
    narrow = hf_checkpoint("bitnet", "packed")  # in_features 128: not a whole 256-weight TQ block
    from gguf_files import add_bpe_tokenizer
    import shutil

    narrow = add_bpe_tokenizer(shutil.copytree(narrow, tmp_path / "narrow"))
    line = one_line_error(cli("export", "gguf", narrow, "-o", tmp_path / "b.gguf"))
    assert "q_proj.weight" in line and "TQ2_0" in line and "256" in line
    no_merges = hf_checkpoint("bitnet", "packed", dims={"hidden_size": 256, "intermediate_size": 512})
    line = one_line_error(cli("export", "gguf", no_merges, "-o", tmp_path / "c.gguf"))
    assert "tokenizer" in line and "merges" in line
    assert not any(p.name.endswith(".gguf") for p in tmp_path.iterdir())


def test_shipped_model_exports(tmp_path, cli):
    out = tmp_path / "kjv.gguf"
    assert cli("export", "gguf", "-o", out).returncode == 0
    fields = gguf.GGUFReader(out).fields
    assert fields["bitnet.hidden_activation"].contents() == "relu2"
    r = cli("inspect", out, "--check", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["plausibility"]["plausible"]
