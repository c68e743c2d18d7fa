"""The stock runners on the shipped model's artifacts with edgebit's op libraries, from TEXT: onnxruntime-genai
(its tokenizer asked for the template's BOS with add_special_tokens), ExecuTorch's TextLLMRunner (the C++ runner
behind Android's LlmModule; its HF tokenizer ignores the template, so it is asked for one BOS with num_bos),
edgebit's native runner and `edgebit run` generate the same greedy tokens. The shipped tokenizer is in Llama 3's form (edgebit/train/bpe.py), which every one of them reads exactly as `tokenizers` does."""

import json
import os
import subprocess
import sys
from pathlib import Path

from genai_greedy import genai_greedy

PROMPT = "And God said"
NEW = 16

ET_RUNNER = Path(__file__).parents[1] / "executorch" / "text_llm_runner_probe.py"


def _onnxruntime_genai(art) -> tuple[list[int], list[int]]:
    import onnxruntime_genai as og

    model = og.Model(str(art))
    tokenizer = og.Tokenizer(model)
    tokenizer.update_options(add_special_tokens="true")  # the template's BOS, as `tokenizers` adds it
    prompt = [int(i) for i in tokenizer.encode(PROMPT)]
    return prompt, genai_greedy(model, prompt, NEW)


def test_four_runners_generate_the_same_tokens_from_text(shipped_artifacts, runner, cli):
    from tokenizers import Tokenizer

    art, pte = shipped_artifacts["onnx"], shipped_artifacts["executorch"]
    ours = json.loads(cli("run", art, "--prompt", PROMPT, "--max-new-tokens", NEW, "--json").stdout)
    native = runner(art, "--prompt", PROMPT, "--max-new-tokens", str(NEW), "--json")
    assert native.returncode == 0, native.stderr
    native = json.loads(native.stdout)
    assert native["prompt_ids"] == ours["prompt_ids"] and native["generated_ids"] == ours["generated_ids"]

    prompt, tokens = _onnxruntime_genai(art)
    assert prompt == ours["prompt_ids"] and tokens == ours["generated_ids"][:len(tokens)] and len(tokens) >= NEW - 1

    out = subprocess.run([sys.executable, str(ET_RUNNER), str(pte), PROMPT, str(NEW), "1"], capture_output=True,
                         text=True, timeout=300, env={**os.environ})
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    pte_ours = json.loads(cli("run", pte, "--prompt", PROMPT, "--max-new-tokens", NEW, "--json").stdout)
    assert got["prompt_tokens"] == len(pte_ours["prompt_ids"])  # one BOS (num_bos), as ours from the template
    assert pte_ours["generated_ids"] == ours["generated_ids"]  # the .pte and the ONNX artifact agree too
    tok = Tokenizer.from_file(str(pte / "tokenizer.json"))
    # its pieces are the generated tokens decoded one by one (the shipped vocabulary is KJV's ASCII text)
    assert got["pieces"] == [tok.decode([i]) for i in pte_ours["generated_ids"][:len(got["pieces"])]]
    assert len(got["pieces"]) >= NEW - 1
