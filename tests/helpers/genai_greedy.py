"""Greedy generation with the stock onnxruntime-genai runner, as its users drive it."""


def genai_greedy(model, prompt: list[int], new_tokens: int) -> list[int]:
    """The tokens an og.Model generates greedily after `prompt`, up to `new_tokens` of them."""
    import onnxruntime_genai as og

    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(prompt) + new_tokens, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(prompt)
    tokens = []
    while not generator.is_done():
        generator.generate_next_token()
        tokens.append(int(generator.get_next_tokens()[0]))
    return tokens
