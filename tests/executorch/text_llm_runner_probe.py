"""ExecuTorch's TextLLMRunner (the C++ runner behind Android's LlmModule) on an edgebit .pte, in its own process:
    python text_llm_runner_probe.py ARTIFACT PROMPT MAX_NEW_TOKENS [NUM_BOS]
prints {"pieces": [...], "prompt_tokens": N}. Our kernel library is loaded first (RTLD_GLOBAL), as its users do."""

import ctypes
import json
import os
import sys

art, prompt, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
num_bos = int(sys.argv[4]) if len(sys.argv) > 4 else 0
from executorch.extension.llm.runner import GenerationConfig, TextLLMRunner  # noqa: E402

ctypes.CDLL(os.path.join(art, "libedgebit_executorch.so"), mode=ctypes.RTLD_GLOBAL)
runner = TextLLMRunner(os.path.join(art, "program.pte"), os.path.join(art, "tokenizer.json"))
pieces, stats = [], []
config = GenerationConfig(echo=False, max_new_tokens=n, temperature=0.0)
# ExecuTorch's HF tokenizer ignores tokenizer.json's TemplateProcessing post-processor, so the BOS a Llama-style
# model expects is asked for by the caller (GenerationConfig.num_bos).
config.num_bos = num_bos
runner.generate(prompt, config, token_callback=pieces.append, stats_callback=stats.append)
print(json.dumps({"pieces": pieces, "prompt_tokens": stats[0].num_prompt_tokens}))
