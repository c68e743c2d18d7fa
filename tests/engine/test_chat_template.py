"""The chat template rendered at export into per-turn pieces equals transformers' apply_chat_template, and the
engine's chat (edgebit-runner --chat --json) feeds exactly those ids, keeps the KV cache between turns and says
when the context is full."""

import json

import pytest


LLAMA3_STYLE = ("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n'"
                " + m['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
                "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
NO_SYSTEM = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
             "{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}"
             "{{ 'assistant: ' }}{% endif %}")
NUMBERED = ("{% for m in messages %}{{ loop.index|string + ' ' + m['role'] + ': ' + m['content'] + '\\n' }}"
            "{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")


def _checkpoint_with(template, base, tmp_path):
    import shutil

    d = tmp_path / "ckpt"
    shutil.copytree(base, d)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["chat_template"] = template
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    return d


def _hf_tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _compose(pieces, conversation, system=None):
    """What the engine feeds for a conversation of user/assistant turns, as text."""
    text = pieces["system_prefix"] + system + pieces["system_to_user"] if system else pieces["prefix"]
    trim = (lambda s: s.strip()) if pieces["trim_content"] else (lambda s: s)
    for i, (user, reply) in enumerate(conversation):
        text += (pieces["assistant_to_user"] if i else "") + trim(user) + pieces["user_to_assistant"]
        if reply is not None:
            text += trim(reply)
    return text


@pytest.mark.parametrize("template", ["2b4t", "llama3"])
def test_pieces_compose_what_transformers_renders(chat_checkpoint, tmp_path, template):
    from edgebit.exporters.chat_template import render_chat_pieces

    ckpt = chat_checkpoint if template == "2b4t" else _checkpoint_with(LLAMA3_STYLE, chat_checkpoint, tmp_path)
    pieces, why = render_chat_pieces(ckpt)
    assert pieces is not None, why
    hf = _hf_tokenizer(ckpt)
    convo = [(" Who made the light? ", "God, on the first day."), ("And the sea?", None)]
    for system in (None, "Answer from Genesis."):
        msgs = ([{"role": "system", "content": system}] if system else [])
        for user, reply in convo:
            msgs.append({"role": "user", "content": user})
            if reply is not None:
                msgs.append({"role": "assistant", "content": reply})
        want = hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        assert _compose(pieces, convo, system) == want


def test_templates_without_system_role_or_regular_turns(chat_checkpoint, tmp_path):
    from edgebit.exporters.chat_template import render_chat_pieces

    pieces, _ = render_chat_pieces(_checkpoint_with(NO_SYSTEM, chat_checkpoint, tmp_path / "a"))
    assert pieces is not None and "system_prefix" not in pieces
    pieces, why = render_chat_pieces(_checkpoint_with(NUMBERED, chat_checkpoint, tmp_path / "b"))
    assert pieces is None and why.startswith("the chat template")


@pytest.fixture(scope="module")
def chat_artifact(chat_checkpoint, tmp_path_factory, cli):
    out = tmp_path_factory.mktemp("chat-art") / "onnx"
    r = cli("export", "onnx", chat_checkpoint, "-o", out, "--max-seq-len", "128")
    assert r.returncode == 0, r.stderr
    return out


def test_manifest_carries_the_pieces_and_the_end_of_turn_id(chat_artifact):
    chat = json.loads((chat_artifact / "manifest.json").read_text())["chat"]
    assert chat["prefix"] == "User: " and chat["user_to_assistant"] == "<|eot_id|>Assistant: "
    assert chat["assistant_to_user"] == "<|eot_id|>User: " and chat["system_prefix"] == "System: "
    assert 258 in chat["stop_token_ids"] and chat["trim_content"] is True


def test_runner_chat_feeds_the_template_ids_and_keeps_the_cache(chat_artifact, chat_checkpoint, runner):
    hf = _hf_tokenizer(chat_checkpoint)
    r = runner(chat_artifact, "--chat", "--json", "--max-new-tokens", "4", "--system", "Be brief.",
               input="In the beginning\nand then\n")
    assert r.returncode == 0, r.stderr
    first, second = [json.loads(line) for line in r.stdout.splitlines()]
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "In the beginning"}]
    want = hf.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True, return_dict=False)
    assert first["prompt_ids"] == list(want)
    assert second["prompt_ids"] == hf.encode("<|eot_id|>User: and then<|eot_id|>Assistant: ", add_special_tokens=False)
    # The cache holds both turns: each prompt, and each reply but the last token sampled (not fed yet).
    fed = lambda t: len(t["prompt_ids"]) + len(t["generated_ids"]) - 1  # noqa: E731
    assert second["context_tokens"] == fed(first) + fed(second)


def test_runner_chat_says_when_the_context_is_full_and_recovers(chat_artifact, runner):
    long = "word " * 40  # ~200 byte tokens > max_seq_len 128
    r = runner(chat_artifact, "--chat", "--max-new-tokens", "4", input=f"{long}\nhi\n/reset\nhi\n")
    assert r.returncode == 0, r.stderr
    assert "the context is full" in r.stderr and "/reset" in r.stderr and "(conversation cleared)" in r.stderr
    assert r.stderr.count("tok/s; context") == 2  # the two short turns ran


def test_runner_chat_without_template_is_a_clear_error(shipped_artifacts, runner):
    r = runner(shipped_artifacts["onnx"], "--chat", input="hi\n")
    assert r.returncode == 2 and "no chat template" in r.stderr and len(r.stderr.splitlines()) == 1
