"""transformers' BitNet quantization_config -> QuantScheme, with every value edgebit cannot map to exact
arithmetic refused by key (never guessed). The rules are transformers 5's own (integrations/bitnet.py:
replace_with_bitnet_linear, BitLinear, AutoBitLinear, BitNetDeserialize; utils/quantization_config.py:
BitNetQuantConfig defaults; quantizers/base.py + quantizers_utils.should_convert_module for
modules_to_not_convert); docs/weight-layout.md cites them."""

from __future__ import annotations

import re
from pathlib import Path

from edgebit.errors import ConfigError
from edgebit.model.config import QuantScheme

LINEAR_CLASSES = ("bitlinear", "autobitlinear")
MODES = ("online", "offline")
KEY = "quantization_config"
BINARY = "bitnet_binary"  # edgebit's binary BitNet format (docs/weight-layout.md "Binary BitNet")
BINARY_KEYS = ("quant_method", "quantization_mode", "weight_bits", "activation_bits", "groups", "layer_norm_eps")


def quantization_config(raw: dict) -> dict:
    qc = raw.get(KEY)
    return qc if isinstance(qc, dict) else {}


def _module_skipped(name: str, patterns: list[str]) -> bool:
    """transformers' should_convert_module, inverted: a pattern skips `name` when it matches from the start up to
    a module boundary (as a regex), or as a suffix."""
    boundary = r"(?:(?<=\.)|(?=\.|$))"
    return any(re.match(rf"(?:{p}){boundary}", name) or name.endswith(p) for p in patterns)


def _check_skipped_modules(qc: dict, path: Path, linear_names: list[str]) -> None:
    patterns = qc.get("modules_to_not_convert")
    if patterns is None:
        return  # transformers then skips the output embedding (lm_head) and converts every other linear
    where = f"{path}: key '{KEY}.modules_to_not_convert'"
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError(f"{where}: expected a list of module names or null, got {patterns!r}")
    try:
        kept_float = [n for n in linear_names if _module_skipped(n, patterns)]
        head_float = _module_skipped("lm_head", patterns)
    except re.error as e:
        raise ConfigError(f"{where}: {e.pattern!r} is not a valid pattern ({e})") from None
    if kept_float:
        raise ConfigError(f"{where}: leaves {kept_float[0]} a float linear; edgebit runs every decoder linear "
                          "ternary")
    if not head_float:
        # A given list replaces transformers' default skips, so the head would become a ternary BitLinear.
        raise ConfigError(f"{where}: does not list lm_head, so transformers would make the LM head ternary; "
                          "edgebit keeps the head in float (add \"lm_head\")")


def parse_quant_scheme(raw: dict, path: Path, linear_names: list[str]) -> QuantScheme:
    """QuantScheme of a transformers-style config.json. No quantization_config: master weights, ternarized at
    load (BitNet b1.58 by definition)."""
    if raw.get(KEY) is None:
        return QuantScheme()
    qc = raw[KEY]
    if not isinstance(qc, dict):
        raise ConfigError(f"{path}: key '{KEY}': expected an object, got {qc!r}")
    method = qc.get("quant_method", "bitnet")
    if method != "bitnet":
        raise ConfigError(f"{path}: key '{KEY}.quant_method': expected 'bitnet', got {method!r}")
    linear_class = qc.get("linear_class", "bitlinear")  # BitNetQuantConfig's defaults
    if linear_class not in LINEAR_CLASSES:
        raise ConfigError(f"{path}: key '{KEY}.linear_class': expected one of {', '.join(LINEAR_CLASSES)}, "
                          f"got {linear_class!r}")
    mode = qc.get("quantization_mode", "offline")
    if mode not in MODES:
        raise ConfigError(f"{path}: key '{KEY}.quantization_mode': expected one of {', '.join(MODES)}, got {mode!r}")
    use_rms_norm = qc.get("use_rms_norm", False)
    if not isinstance(use_rms_norm, bool):
        raise ConfigError(f"{path}: key '{KEY}.use_rms_norm': expected true or false, got {use_rms_norm!r}")
    eps = qc.get("rms_norm_eps", 1e-6)
    if use_rms_norm and (isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps <= 1):
        raise ConfigError(f"{path}: key '{KEY}.rms_norm_eps': expected a number in [0, 1] with use_rms_norm, "
                          f"got {eps!r}")
    _check_skipped_modules(qc, path, linear_names)
    return QuantScheme(linear_class, mode, use_rms_norm, float(eps) if use_rms_norm else 1e-6)


def binary_scheme(raw: dict, path: Path) -> QuantScheme:
    """edgebit's binary BitNet (W1A8) quantization_config: every key known, every value one edgebit computes."""
    qc = raw.get(KEY)
    if not isinstance(qc, dict) or qc.get("quant_method") != BINARY:
        raise ConfigError(f"{path}: key '{KEY}': a {BINARY} model needs quantization_config.quant_method "
                          f"'{BINARY}', got {qc!r}")
    for key in qc:
        if key not in BINARY_KEYS:
            raise ConfigError(f"{path}: key '{KEY}.{key}': not a key of {BINARY} (known: {', '.join(BINARY_KEYS)})")
    for key, want in (("weight_bits", 1), ("activation_bits", 8)):
        if qc.get(key, want) != want or isinstance(qc.get(key), bool):
            raise ConfigError(f"{path}: key '{KEY}.{key}': expected {want} (binary weights, int8 activations), "
                              f"got {qc[key]!r}")
    mode = qc.get("quantization_mode", "offline")
    if mode not in MODES:
        raise ConfigError(f"{path}: key '{KEY}.quantization_mode': expected one of {', '.join(MODES)}, got {mode!r}")
    groups = qc.get("groups", 1)
    if isinstance(groups, bool) or not isinstance(groups, int) or not 1 <= groups <= 1 << 16:
        raise ConfigError(f"{path}: key '{KEY}.groups': expected a positive integer, got {groups!r}")
    eps = qc.get("layer_norm_eps", 1e-5)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps <= 1:
        raise ConfigError(f"{path}: key '{KEY}.layer_norm_eps': expected a number in (0, 1], got {eps!r}")
    return QuantScheme(mode=mode, inner_norm="layer", inner_norm_eps=float(eps), weights="binary", groups=groups)


def check_groups(shapes: dict[str, tuple[int, int]], quant: QuantScheme, path: Path) -> None:
    """G groups of rows (weights) and of input features (the LayerNorm inside every binary linear) must divide
    every linear's rows and inputs."""
    if quant.groups == 1:
        return
    for name, (n, k) in shapes.items():
        for size, what in ((n, "rows"), (k, "input features")):
            if size % quant.groups:
                raise ConfigError(f"{path}: key '{KEY}.groups': {quant.groups} does not divide {name}'s {size} "
                                  f"{what}")
