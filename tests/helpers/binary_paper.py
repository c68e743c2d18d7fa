"""The binary BitNet's linear transcribed from the paper's formulas in plain PyTorch (Wang et al. 2023, "BitNet:
Scaling 1-bit Transformers for Large Language Models", arXiv 2310.11453, section 2.1-2.3), with no edgebit code,
and the model it is held to edgebit's reference in: transformers' BitNetForCausalLM (the architecture edgebit
trains) with every linear replaced by this one. Where the paper leaves a choice open, the choice is the one edgebit's
format documents (docs/weight-layout.md "Binary BitNet"): Q_b = 127 (the paper's 2^(b-1) minus one, so a rounded
value fits int8) with round-to-nearest-even, gamma per token, and gamma's floor 1e-5 (the paper's epsilon)."""

import json
from pathlib import Path

import torch
from torch import nn

Q_B = 127.0
EPS = 1e-5


class PaperBitLinear(nn.Module):
    def __init__(self, weight: torch.Tensor, groups: int = 1, ln_eps: float = 1e-5):
        super().__init__()
        n, m = weight.shape
        rows = n // groups
        w_sign, beta = [], []
        for g in range(groups):  # eq. 12-13: each group of rows estimates its own alpha and beta
            w_g = weight[g * rows:(g + 1) * rows].float()
            alpha = w_g.sum() / w_g.numel()                             # eq. 2: alpha = 1/(nm) sum_ij W_ij
            w_sign.append(torch.where(w_g - alpha > 0, 1.0, -1.0))      # eq. 1: Sign(W - alpha), Sign(0) = -1
            beta.append(torch.full((rows,), float(w_g.abs().sum() / w_g.numel())))  # eq. 3: ||W||_1 / (nm)
        self.register_buffer("w_sign", torch.cat(w_sign))
        self.register_buffer("beta", torch.cat(beta))
        self.groups, self.ln_eps = groups, ln_eps

    def layer_norm(self, x: torch.Tensor) -> torch.Tensor:
        """eq. 10 (SubLN before quantization), per group of features (eq. 14): (x - E x) / sqrt(Var x + eps)."""
        parts = []
        for p in x.float().chunk(self.groups, dim=-1):
            mean = p.sum(-1, keepdim=True) / p.shape[-1]
            var = ((p - mean) ** 2).sum(-1, keepdim=True) / p.shape[-1]
            parts.append((p - mean) / torch.sqrt(var + self.ln_eps))
        return torch.cat(parts, dim=-1)

    def parity_input(self, x: torch.Tensor) -> torch.Tensor:
        """What gets quantized to int8 (the transformers_parity fixture compares these codes)."""
        return self.layer_norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer_norm(x)
        gamma = x.abs().amax(dim=-1, keepdim=True).clamp(min=EPS)       # eq. 5: gamma = ||x||_inf
        x_q = torch.clamp(x * (Q_B / gamma), -Q_B, Q_B).round()        # eq. 4: Clip(x Q_b / gamma, ...)
        y = x_q @ self.w_sign.T                                         # eq. 11: W~ x~ ...
        return y * self.beta * gamma / Q_B                              # ... x beta gamma / Q_b


def paper_model(checkpoint: Path, latent: dict[str, torch.Tensor]):
    """BitNetForCausalLM of `checkpoint`'s config with its latent (float) weights, every linear a PaperBitLinear."""
    from transformers import BitNetConfig, BitNetForCausalLM

    raw = json.loads((checkpoint / "config.json").read_text())
    q = raw.pop("quantization_config")
    raw.update(model_type="bitnet", architectures=["BitNetForCausalLM"])  # the architecture edgebit trains
    model = BitNetForCausalLM(BitNetConfig(**raw)).eval()
    model.load_state_dict({k: v for k, v in latent.items() if not k.endswith("_proj.weight")}, strict=False)
    for name, module in list(model.named_modules()):
        for child, lin in list(module.named_children()):
            if isinstance(lin, nn.Linear) and child.endswith("_proj"):
                setattr(module, child, PaperBitLinear(latent[f"{name}.{child}.weight"], q["groups"],
                                                      q["layer_norm_eps"]))
    return model
