"""The reference model is the golden truth for every artifact; here it is held to transformers' own
BitNetForCausalLM / LlamaForCausalLM with their bitnet quantization, in both checkpoint forms."""

import pytest
import torch

from edgebit.backends.reference import ReferenceBackend
from edgebit.generate import generate
from edgebit.model.reference import ReferenceModel
from edgebit.model.weights import load_model_weights

TOL = 1e-4
CASES = [("bitnet", "master", True), ("bitnet", "packed", True), ("bitnet", "packed", False),
         ("llama", "master", False), ("llama", "packed", False)]


@pytest.mark.parametrize("family,form,tie", CASES)
def test_prefill_and_decode_match_transformers(hf_checkpoint, load_hf, transformers_parity, family, form, tie):
    path = hf_checkpoint(family, form, tie)
    hf = load_hf(path)
    ids = torch.tensor([[256, 5, 17, 99, 140, 3, 77, 201]])
    with torch.no_grad():
        assert hf(ids).logits.abs().max() > 1.0  # logits large enough that 1e-4 is a real bound
    # 1e-4 at every position up to the first int8 rounding flip between the two float orders (tests/conftest.py)
    assert transformers_parity(hf, ReferenceModel(load_model_weights(path)), ids, 5, TOL) > 0


def test_batched_prefill_matches_transformers(hf_checkpoint, load_hf):
    path = hf_checkpoint("bitnet", "packed")
    ids = torch.tensor([[256, 5, 17, 99, 140], [256, 250, 1, 2, 3]])
    with torch.no_grad():
        expected = load_hf(path)(ids).logits
    got = ReferenceModel(load_model_weights(path)).forward(ids)
    assert (expected - got).abs().max().item() <= TOL


def test_packed_and_master_forms_agree(hf_checkpoint, load_hf):
    """Both forms come from the same masters: transformers gives the same logits for both, and so do we.
    This pins the packed form's conventions (row packing, weight_scale) to the master form's meaning."""
    ids = torch.tensor([[256, 5, 17, 99, 140, 3]])
    with torch.no_grad():
        hf_master = load_hf(hf_checkpoint("bitnet", "master")).forward(ids).logits
        hf_packed = load_hf(hf_checkpoint("bitnet", "packed")).forward(ids).logits
    ours_master = ReferenceModel(load_model_weights(hf_checkpoint("bitnet", "master"))).forward(ids)
    ours_packed = ReferenceModel(load_model_weights(hf_checkpoint("bitnet", "packed"))).forward(ids)
    assert (hf_master - hf_packed).abs().max().item() <= TOL
    assert (ours_master - ours_packed).abs().max().item() <= TOL


def test_generate_greedy_matches_transformers(hf_checkpoint, load_hf):
    path = hf_checkpoint("llama", "packed", False)
    prompt = [256, 10, 20, 30]
    with torch.no_grad():
        expected = load_hf(path).generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False,
                                          eos_token_id=None, pad_token_id=0)[0, len(prompt):].tolist()
    assert generate(ReferenceBackend(path, 32), prompt, 8).generated_ids == expected
