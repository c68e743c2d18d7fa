"""The checkpoint's chat template, rendered at export into the strings around each turn (manifest "chat"), so
the engine on the device needs no template engine. A conversation of the engine is
    first turn:  (system ? system_prefix + S + system_to_user : prefix) + U + user_to_assistant
    later turns: assistant_to_user + U + user_to_assistant
with the assistant's own tokens in between (they are in the KV cache). The pieces are found by rendering probe
conversations with sentinel contents and cutting at the sentinels, then checked: a template whose turns are not
this regular (it renders a conversation differently from the pieces) gets no "chat" entry, and says why."""

from __future__ import annotations

import json
from pathlib import Path

from edgebit.errors import EdgebitError

_S, _U1, _A1, _U2, _A2, _U3 = ("\x01sys\x01", "\x01u1\x01", "\x01a1\x01", "\x01u2\x01", "\x01a2\x01", "\x01u3\x01")


def _token_text(value) -> str:
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return value if isinstance(value, str) else ""


def load_template(model: Path) -> tuple[str, dict] | None:
    """(template source, tokenizer_config) from tokenizer_config.json or chat_template.jinja, None if neither."""
    config_path = Path(model) / "tokenizer_config.json"
    config = {}
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise EdgebitError(f"{config_path}: not valid JSON ({e})") from None
    template = config.get("chat_template") if isinstance(config, dict) else None
    if isinstance(template, list):  # [{"name": "default", "template": ...}, ...]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    jinja_file = Path(model) / "chat_template.jinja"
    if not template and jinja_file.is_file():
        template = jinja_file.read_text(encoding="utf-8")
    if not isinstance(template, str) or not template.strip():
        return None
    return template, config if isinstance(config, dict) else {}


def _renderer(template: str, config: dict):
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateError(message)

    # The environment transformers' apply_chat_template uses.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    compiled = env.from_string(template)
    specials = {k: _token_text(config.get(k)) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}

    def render(messages, add_generation_prompt=True) -> str:
        return compiled.render(messages=messages, add_generation_prompt=add_generation_prompt, **specials)

    return render


def _cut(text: str, sentinels: list[str]) -> list[str] | None:
    parts, rest = [], text
    for s in sentinels:
        if rest.count(s) != 1:
            return None
        before, rest = rest.split(s)
        parts.append(before)
    return parts + [rest]


def render_chat_pieces(model: Path) -> tuple[dict | None, str]:
    """(the manifest's "chat" entry or None, a note on why none)."""
    found = load_template(model)
    if found is None:
        return None, "the checkpoint has no chat_template"
    template, config = found
    from jinja2.exceptions import TemplateError

    try:
        render = _renderer(template, config)
        user = lambda c: {"role": "user", "content": c}  # noqa: E731
        bot = lambda c: {"role": "assistant", "content": c}  # noqa: E731
        plain = _cut(render([user(_U1), bot(_A1), user(_U2)]), [_U1, _A1, _U2])
        if plain is None:
            return None, "the chat template does not render message contents verbatim"
        prefix, user_to_assistant, assistant_to_user, tail = plain
        if tail != render([user(_U1)])[len(prefix) + len(_U1):] or tail != user_to_assistant:
            return None, "the chat template's generation prompt differs between turns"
        pieces = {"prefix": prefix, "user_to_assistant": user_to_assistant, "assistant_to_user": assistant_to_user}
        try:
            with_system = _cut(render([{"role": "system", "content": _S}, user(_U1)]), [_S, _U1])
        except TemplateError:
            with_system = None  # the template refuses a system role
        if with_system is not None:
            pieces["system_prefix"], pieces["system_to_user"] = with_system[0], with_system[1]
        trimmed = render([user(" " + _U1 + " ")])
        pieces["trim_content"] = f" {_U1} " not in trimmed
        # A longer conversation must be exactly what the pieces compose.
        convo = [user(_U1), bot(_A1), user(_U2), bot(_A2), user(_U3)]
        composed = (prefix + _U1 + user_to_assistant + _A1 + assistant_to_user + _U2 + user_to_assistant + _A2 +
                    assistant_to_user + _U3 + user_to_assistant)
        if render(convo) != composed:
            return None, "the chat template's turns are not regular (rendering differs from prefix/suffix pieces)"
    except TemplateError as e:
        return None, f"the chat template cannot be rendered ({e})"
    return pieces, ""


def chat_stop_ids(pieces: dict, tokenizer, eos_ids: list[int]) -> list[int]:
    """End-of-sequence ids plus the special token that closes an assistant turn (e.g. <|eot_id|>)."""
    ids = set(eos_ids)
    closing = tokenizer.encode(pieces["assistant_to_user"], add_special_tokens=False).ids
    specials = {i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special}
    if closing and closing[0] in specials:
        ids.add(closing[0])
    return sorted(ids)


def chat_manifest_entry(model: Path, eos_ids: list[int]) -> dict | None:
    """The manifest's "chat" value for an export (None without a usable template)."""
    pieces, _why = render_chat_pieces(model)
    if pieces is None or not (Path(model) / "tokenizer.json").is_file():
        return None
    from edgebit.tokenizer import load_tokenizer

    pieces["stop_token_ids"] = chat_stop_ids(pieces, load_tokenizer(model), eos_ids)
    return pieces
