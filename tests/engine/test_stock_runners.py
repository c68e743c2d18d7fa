"""onnxruntime-genai, the stock ONNX runner, on the shipped model's artifact with edgebit's op library: from the
prompt ids edgebit's tokenizer gives, its greedy tokens equal edgebit-runner's. (From text it starts elsewhere:
its tokenizer, onnxruntime-extensions, applies neither the ByteLevel add_prefix_space nor the TemplateProcessing
BOS of the shipped tokenizer.json; ExecuTorch's TextLLMRunner is held to edgebit's tokens in
tests/executorch/test_executorch_export.py.)"""

import json


def test_onnxruntime_genai_generates_the_runners_tokens(shipped_artifacts, runner):
    import onnxruntime_genai as og

    art = shipped_artifacts["onnx"]
    r = runner(art, "--prompt", "And God said", "--max-new-tokens", "16", "--json")
    assert r.returncode == 0, r.stderr
    ours = json.loads(r.stdout)
    model = og.Model(str(art))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(ours["prompt_ids"]) + 16, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(ours["prompt_ids"])
    tokens = []
    while not generator.is_done():
        generator.generate_next_token()
        tokens.append(int(generator.get_next_tokens()[0]))
    assert tokens == ours["generated_ids"][:len(tokens)] and len(tokens) >= 8
