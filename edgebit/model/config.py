"""The one frozen model config every stage after loading sees, and the registry of checkpoint families.

A family is a module under edgebit/model/families/ that recognises its config.json and normalizes it
into ModelConfig. Exporters and kernels never look at config.json themselves.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edgebit.errors import ConfigError

# Upper bounds that no real checkpoint reaches; anything above is a corrupt or hostile config.json.
MAX_DIM = 1 << 17
MAX_VOCAB = 1 << 24
MAX_LAYERS = 1024
MAX_POSITIONS = 1 << 24


@dataclass(frozen=True)
class RopeConfig:
    theta: float
    kind: str = "default"  # "default" | "llama3"
    factor: float = 1.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192


@dataclass(frozen=True)
class QuantScheme:
    """How a checkpoint's ternary linears compute, as the code that published it computes them.

    linear_class / mode are transformers' quantization_config (integrations/bitnet.py, docs/weight-layout.md):
      "bitlinear" (any mode): packed uint8 weights, y = (x_q . W) / (s * weight_scale)   -> gamma = 1/weight_scale
      "autobitlinear" + "offline": packed (or already ternary float) weights, y = (x_q . W) / s * weight_scale
      "autobitlinear" + "online", or None (no quantization_config; 1bitLLM's BitLinear): float master weights,
          ternarized at load by absmean, gamma = mean|W|
    use_rms_norm: an RMSNorm with its own weight (K,) and eps rms_norm_eps on the input of every ternary linear,
    before the activation quantization.
    inner_norm: a norm with no weight of its own inside every linear, before the activation quantization:
      "rms" (OLMo-Bitnet's BitLinear158) or "layer" (the LayerNorm of the 2023 BitNet's BitLinear), eps inner_norm_eps.
    weights: "ternary" (BitNet b1.58) or "binary" (BitNet 2023: sign(W - mean W) scaled by mean|W|, codes 0 and 2
      of the ternary layout), with `groups` groups of rows each scaled on its own and, for the "layer" inner norm,
      `groups` groups of input features each normalized on its own (docs/weight-layout.md)."""

    linear_class: str | None = None  # "bitlinear" | "autobitlinear" | None (master weights by definition)
    mode: str | None = None  # "offline" | "online" | None
    use_rms_norm: bool = False
    rms_norm_eps: float = 1e-6
    inner_norm: str | None = None  # "rms" | "layer" | None
    inner_norm_eps: float = 1e-5
    weights: str = "ternary"  # "ternary" | "binary"
    groups: int = 1

    @property
    def weight_forms(self) -> tuple[str, ...]:
        """The weight forms the publisher's code loads: "packed" (uint8 [N/4, K] + weight_scale), "unpacked"
        (float ternary values + weight_scale) and "master" (float weights ternarized at load)."""
        if self.weights == "binary":
            return ("packed",) if self.mode == "offline" else ("master",)
        if self.linear_class == "bitlinear":
            return ("packed",)
        if self.linear_class == "autobitlinear" and self.mode == "offline":
            return ("packed", "unpacked")
        return ("master",)

    @property
    def weight_scale_divides(self) -> bool:
        return self.linear_class == "bitlinear"

    @property
    def input_norm(self) -> tuple[str, float] | None:
        """(kind, eps) of the norm inside every linear, or None."""
        if self.use_rms_norm:
            return "rms", self.rms_norm_eps
        return None if self.inner_norm is None else (self.inner_norm, self.inner_norm_eps)

    def describe(self) -> str:
        if self.weights == "binary":
            form = "float masters binarized at load" if self.mode == "online" else "packed codes 0/2 + weight_scale"
            groups = f", {self.groups} groups" if self.groups > 1 else ""
            return (f"binary (BitNet 2023: sign(W - mean W) x mean|W|), {form}, layernorm in every linear "
                    f"(eps {self.inner_norm_eps:g}){groups}")
        inner = f", {self.inner_norm} norm without weight in every linear (eps {self.inner_norm_eps:g})" \
            if self.inner_norm else ""
        if self.linear_class is None:
            return "master weights ternarized at load (no quantization_config)" + inner
        norm = f", rms_norm in every linear (eps {self.rms_norm_eps:g})" if self.use_rms_norm else ""
        return f"{self.linear_class}/{self.mode}{norm}{inner}"


@dataclass(frozen=True)
class ModelConfig:
    family: str  # registry name, e.g. "bitnet" or "llama-bitnet"
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    max_position_embeddings: int
    rms_norm_eps: float
    rope: RopeConfig
    activation: str  # "relu2" (BitNet b1.58 2B4T) | "silu" (Llama-style ternary checkpoints)
    sub_norms: bool  # attn_sub_norm before o_proj and ffn_sub_norm before down_proj (SubLN)
    tie_word_embeddings: bool
    bos_token_id: int | None
    eos_token_ids: tuple[int, ...]
    quant: QuantScheme = QuantScheme()
    # The block norms (before attention, before the MLP, final; and the sub-norms): "rms" (RMSNorm) or "layer"
    # (LayerNorm: mean subtracted, as OLMo's default), with eps rms_norm_eps either way.
    norm: str = "rms"
    norm_weights: bool = True  # False: the block norms have no weight (OLMo's layer_norm_with_affine false)

    @property
    def q_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(out_features, in_features) of each ternary linear in one decoder layer."""
        h, f = self.hidden_size, self.intermediate_size
        return {
            "q_proj": (self.q_size, h),
            "k_proj": (self.kv_size, h),
            "v_proj": (self.kv_size, h),
            "o_proj": (h, self.q_size),
            "gate_proj": (f, h),
            "up_proj": (f, h),
            "down_proj": (h, f),
        }

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Family:
    name: str
    description: str  # shown to users when their checkpoint matches no family
    matches: Callable[[dict], bool]
    normalize: Callable[[dict, Path], ModelConfig]
    # The family's own names (under model.layers.{i}.) of the norms before o_proj and down_proj (SubLN).
    sub_norm_names: tuple[str, str] = ("self_attn.attn_sub_norm", "mlp.ffn_sub_norm")
    # Where the family stores each tensor (edgebit/model/layout.py); None: the Llama names.
    layout: Callable[["ModelConfig"], object] | None = None


def family_of(cfg: "ModelConfig") -> Family:
    return families()[cfg.family]


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    _FAMILIES[family.name] = family
    return family


def families() -> dict[str, Family]:
    # Importing the package registers every family module it holds.
    import edgebit.model.families  # noqa: F401

    return dict(_FAMILIES)


def read_config_json(path: Path) -> dict:
    """config.json as a dict, with one-line errors for every way the file can be unreadable."""
    try:
        raw_bytes = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; a checkpoint directory needs config.json") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    if len(raw_bytes) > 16 << 20:
        raise ConfigError(f"{path}: {len(raw_bytes)} bytes is too large for a model config (max 16 MiB)")
    try:
        raw = json.loads(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level")
    return raw


def normalize_config(raw: dict, path: Path) -> ModelConfig:
    """Pick the family whose matcher accepts this config.json and let it build the frozen config."""
    known = families()
    for family in known.values():
        if family.matches(raw):
            return family.normalize(raw, path)
    supported = "; ".join(f"{f.name}: {f.description}" for f in known.values())
    mt = raw.get("model_type")
    qm = (raw.get("quantization_config") or {}).get("quant_method") if isinstance(raw.get("quantization_config"), dict) else None
    raise ConfigError(
        f"{path}: unsupported checkpoint family (model_type={mt!r}, quant_method={qm!r}); supported: {supported}"
    )


def load_config(checkpoint_dir: Path) -> ModelConfig:
    path = checkpoint_dir / "config.json"
    return normalize_config(read_config_json(path), path)


class ConfigReader:
    """Typed access to config.json keys; every failure names the file and key."""

    def __init__(self, raw: dict, path: Path):
        self.raw = raw
        self.path = path

    def _fail(self, key: str, expected: str, value=None) -> ConfigError:
        got = "missing" if value is None else f"got {value!r}"
        return ConfigError(f"{self.path}: key '{key}': expected {expected}, {got}")

    def int(self, key: str, default=None, lo: int = 1, hi: int = MAX_DIM) -> int:
        value = self.raw.get(key, default)
        if value is None:
            raise self._fail(key, f"an integer in [{lo}, {hi}]")
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self._fail(key, f"an integer in [{lo}, {hi}]", value)
        return value

    def float(self, key: str, default=None, lo: float = 0.0, hi: float = 1e12) -> float:
        value = self.raw.get(key, default)
        if value is None:
            raise self._fail(key, f"a number in [{lo}, {hi}]")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise self._fail(key, f"a number in [{lo}, {hi}]", value)
        return float(value)

    def bool(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def str(self, key: str, default=None) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str):
            raise self._fail(key, "a string", value)
        return value

    def optional_token_id(self, key: str) -> int | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._fail(key, "a non-negative integer token id", value)
        return value

    def token_ids(self, key: str) -> tuple[int, ...]:
        value = self.raw.get(key)
        if value is None:
            return ()
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise self._fail(key, "a token id or a list of token ids", value)
        return tuple(values)
