import json
import subprocess
import sys
import tempfile

import pytest


def transformers_param_count(path) -> int:
    """transformers' own count for the checkpoint's architecture (linears counted as dense weights), plus the
    norm weights quantization_config.use_rms_norm puts inside every linear (Parameters of the loaded model)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(path)
    use_rms_norm = cfg.quantization_config.get("use_rms_norm", False)
    del cfg.quantization_config  # count the dense architecture, not transformers' packed buffers
    count = AutoModelForCausalLM.from_config(cfg).num_parameters()
    if use_rms_norm:
        loaded = AutoModelForCausalLM.from_pretrained(path)
        count += sum(p.numel() for n, p in loaded.named_parameters() if ".rms_norm." in n)
    return count


@pytest.mark.parametrize("family,form,quant", [
    ("bitnet", "packed", dict(linear_class="autobitlinear", mode="offline", use_rms_norm=True)),
    ("llama", "unpacked", {}), ("llama", "master", dict(use_rms_norm=True))])
def test_inspect_counts_every_quantization_scheme(hf_checkpoint, cli, family, form, quant):
    path = hf_checkpoint(family, form, False, **quant)
    s = json.loads(cli("inspect", path, "--json").stdout)
    assert s["total_params"] == transformers_param_count(path)
    assert s["weight_form"] == form and s["quantization"].startswith(quant.get("linear_class", "autobitlinear"))


def test_inspect_counts_the_1bitllm_family(onebit_checkpoint, cli):
    path, twin = onebit_checkpoint()
    s = json.loads(cli("inspect", path, "--json").stdout)
    assert s["family"] == "1bitllm" and s["total_params"] == transformers_param_count(twin)


@pytest.mark.parametrize("family,form,tie", [("bitnet", "master", True), ("bitnet", "packed", False),
                                             ("llama", "packed", False)])
def test_inspect_json_counts_equal_transformers(hf_checkpoint, cli, family, form, tie):
    path = hf_checkpoint(family, form, tie)
    result = cli("inspect", path, "--json")
    assert result.returncode == 0, result.stderr
    s = json.loads(result.stdout)
    assert s["total_params"] == transformers_param_count(path)
    assert s["weight_form"] == form and s["family"] == ("bitnet" if family == "bitnet" else "llama-bitnet")
    per_layer = 128 * 128 * 2 + 64 * 128 * 2 + 256 * 128 * 3
    assert s["ternary_params"] == 2 * per_layer
    assert s["bytes_packed"] < s["bytes_bf16"]
    assert s["linear_shapes"]["down_proj"] == [128, 256]
    assert 0.2 < s["zero_fraction"] < 0.5 and len(s["layers"]) == 2


def test_inspect_zero_fraction_is_counted(tmp_path, cli):
    from edgebit.model.synthetic import write_random_checkpoint

    path = write_random_checkpoint(tmp_path / "ckpt", "tiny")
    s = json.loads(cli("inspect", path, "--json").stdout)
    # random codes 0..2: a third are zeros
    assert abs(s["zero_fraction"] - 1 / 3) < 0.01
    # packed body (2 bits/weight + gammas) + bf16 head + bf16 norms + one embedding row
    layers, h, f, v = 2, 128, 256, 512
    assert s["bytes_per_token"] == s["ternary_params"] // 4 + 4 * 7 * layers + 2 * v * h + 2 * (
        h + layers * (2 * h + h + f)) + 2 * h


def test_inspect_table_output(hf_checkpoint, cli):
    result = cli("inspect", hf_checkpoint("bitnet", "packed"))
    assert result.returncode == 0, result.stderr
    for text in ("bitnet (packed weights)", "q_proj", "[256, 128]", "bytes read per decoded token"):
        assert text in result.stdout


def test_help_is_instant_and_imports_no_heavy_library():
    code = ("import sys, edgebit.cli.main as m; "
            "print(sorted(x for x in ('torch', 'onnx', 'executorch', 'transformers') if x in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tempfile.gettempdir()).stdout
    assert out.strip() == "[]"
    result = subprocess.run([sys.executable, "-m", "edgebit", "--help"], capture_output=True, text=True,
                            cwd=tempfile.gettempdir())
    assert result.returncode == 0 and "inspect" in result.stdout


def test_bad_option_value_is_a_usage_error(cli, tmp_path):
    result = cli("random-checkpoint", "-o", tmp_path / "x", "--preset", "huge")
    assert result.returncode == 2 and "--preset" in result.stderr


def test_inspect_counts_widths_that_are_not_whole_blocks(hf_checkpoint, cli):
    """A scaled-down bitnet_b1_58-3B shape (hidden 200, head_dim 100, FFN 540): counted from the config, nothing
    packed, equal to transformers' count."""
    path = hf_checkpoint("bitnet", "packed", True, dims=dict(hidden_size=200, num_attention_heads=2,
                                                              num_key_value_heads=2, intermediate_size=540))
    s = json.loads(cli("inspect", path, "--json").stdout)
    assert s["total_params"] == transformers_param_count(path) and s["config"]["head_dim"] == 100
