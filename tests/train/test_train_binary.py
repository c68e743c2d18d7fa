"""`edgebit train --weights binary`: the original BitNet's binary weights (W1A8), end to end on a short run. The
checkpoint it writes is edgebit's binary format; edgebit's reference model computing it is held to a plain PyTorch
transcription of the paper's formulas (tests/helpers/binary_paper.py) inside transformers' BitNet architecture;
its ONNX and .pte exports verify against the reference (top-1 100%), run, and profile."""

import json
import math
from pathlib import Path

import pytest
import torch
from binary_paper import paper_model
from safetensors.torch import load_file

from edgebit.quant.binary import binarize
from edgebit.quant.packing import hf_unpack_codes

TEXT = Path(__file__).parent / "data" / "genesis-1-20.txt"
VOCAB = 512
STEPS = 60
GROUPS = 2
COMMON = ["--preset", "tiny", "--vocab", str(VOCAB), "--batch", "8", "--seq-len", "64", "--lr", "3e-3",
          "--seed", "0", "--threads", "1"]
PROMPT = "And God said, Let the waters bring forth abundantly the moving creature"


@pytest.fixture(scope="module")
def binary(tmp_path_factory, cli):
    out = tmp_path_factory.mktemp("train") / "genesis-binary"
    r = cli("train", TEXT, "-o", out, "--steps", STEPS, "--checkpoint-every", STEPS, "--weights", "binary",
            "--groups", GROUPS, *COMMON)
    assert r.returncode == 0, r.stderr
    return out


def _latent(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out.parent / f"{out.name}.train" / f"step-{STEPS:06d}" / "model.safetensors")


def test_writes_the_binary_format(binary):
    cfg = json.loads((binary / "config.json").read_text())
    assert (cfg["model_type"], cfg["architectures"]) == ("bitnet_binary", ["BitNetBinaryForCausalLM"])
    assert cfg["quantization_config"] == {"quant_method": "bitnet_binary", "quantization_mode": "offline",
                                          "weight_bits": 1, "activation_bits": 8, "groups": GROUPS,
                                          "layer_norm_eps": 1e-5}
    t = json.loads((binary / "training.json").read_text())
    assert t["options"]["weights"] == "binary" and t["heldout_loss"] < math.log(VOCAB)
    state, latent = load_file(binary / "model.safetensors"), _latent(binary)
    for name in ("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"):
        codes = hf_unpack_codes(state[name + ".weight"])
        w_b, beta = binarize(latent[name + ".weight"], GROUPS)
        assert set(codes.unique().tolist()) == {0, 2}  # binary: never code 1
        assert torch.equal(codes.to(torch.int16) - 1, w_b.to(torch.int16))
        assert torch.equal(state[name + ".weight_scale"], beta) and beta.shape == (GROUPS,)


def test_transformers_refuses_it_rather_than_misread_it(binary):
    """Under model_type "bitnet" transformers would ignore the unknown quant_method and reinitialize the packed
    weights it cannot read; its own model_type makes transformers stop."""
    from transformers import AutoModelForCausalLM

    with pytest.raises(ValueError, match="bitnet_binary"):
        AutoModelForCausalLM.from_pretrained(binary)


def test_reference_is_the_papers_arithmetic(binary, transformers_parity):
    """edgebit's loader + reference model against the paper's formulas applied to the latent weights (binarized
    there, by the transcription): logits within 1e-4 up to the first int8 rounding flip, same greedy tokens."""
    from edgebit.backends.reference import ReferenceBackend
    from edgebit.generate import generate
    from edgebit.model.reference import ReferenceModel
    from edgebit.model.weights import load_model_weights
    from edgebit.tokenizer import load_tokenizer

    paper = paper_model(binary, _latent(binary))
    ids = torch.tensor([load_tokenizer(binary).encode(PROMPT).ids])
    assert transformers_parity(paper, ReferenceModel(load_model_weights(binary)), ids, 5) > 0
    with torch.no_grad():
        # (an explicit mask: the prompt starts with BOS, id 0, which generate would take for padding)
        want = paper.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                              eos_token_id=None, pad_token_id=0)[0, ids.shape[1]:].tolist()
    assert generate(ReferenceBackend(binary, 128), ids[0].tolist(), 12).generated_ids == want


@pytest.mark.parametrize("target", ["onnx", "executorch"])
def test_exports_verify_run_and_profile(binary, cli, tmp_path, target):
    art = tmp_path / target
    r = cli("export", target, binary, "-o", art, "--max-seq-len", "128")
    assert r.returncode == 0, r.stderr
    r = cli("verify", art, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["passed"] and report["top1_agreement"] == 1.0, report
    r = cli("run", art, "--prompt", "And God said", "--max-new-tokens", "8", "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout[r.stdout.index("{"):])["generated_ids"]) == 8
    r = cli("profile", art, "--prompt-len", "8", "--gen-len", "4", "--runs", "1", "--threads", "1",
            "--json", tmp_path / "p.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "p.json").read_text())["decode_tokens_per_s"] > 0


def test_inspect_names_the_family_and_counts_parameters(binary, cli):
    r = cli("inspect", binary, "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    latent = _latent(binary)
    assert s["family"] == "bitnet-binary" and s["quantization"].startswith("binary")
    assert s["ternary_params"] == sum(t.numel() for n, t in latent.items() if n.endswith("_proj.weight"))
    assert s["total_params"] == sum(t.numel() for t in latent.values()) and s["zero_fraction"] == 0.0


def test_groups_that_do_not_divide_are_refused(binary, cli, tmp_path):
    from edgebit.errors import CheckpointError, ConfigError
    from edgebit.model.checkpoint import open_checkpoint
    from edgebit.model.weights import load_model_weights

    bad = tmp_path / "g3"
    bad.mkdir()
    cfg = json.loads((binary / "config.json").read_text())
    cfg["quantization_config"]["groups"] = 3
    (bad / "config.json").write_text(json.dumps(cfg))
    (bad / "model.safetensors").write_bytes((binary / "model.safetensors").read_bytes())
    with pytest.raises(ConfigError, match=r"key 'quantization_config.groups': 3 does not divide q_proj's 128 rows"):
        open_checkpoint(bad)
    r = cli("inspect", bad)
    assert r.returncode == 2 and "quantization_config.groups" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # a zero weight (code 1) is not binary
    from safetensors.torch import save_file

    state = load_file(binary / "model.safetensors")
    state["model.layers.0.mlp.up_proj.weight"][0, 0] = 0b01010101
    cfg["quantization_config"]["groups"] = GROUPS
    (bad / "config.json").write_text(json.dumps(cfg))
    save_file(state, bad / "model.safetensors")
    with pytest.raises(CheckpointError, match="up_proj.weight: packed code 1 at row 0, column 0; binary weights"):
        load_model_weights(bad)
    r = cli("train", TEXT, "-o", tmp_path / "x", "--weights", "binary", "--groups", "3", *COMMON)
    assert r.returncode == 2 and "--groups 3" in r.stderr
    # llama.cpp has no type for binary weights: export gguf refuses it, one line, no file
    r = cli("export", "gguf", binary, "-o", tmp_path / "b.gguf")
    assert r.returncode != 0 and "binary weights" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "b.gguf").exists()
