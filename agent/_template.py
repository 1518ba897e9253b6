"""Chat templates from GGUF metadata, rendered in a sandbox, split into trusted and untrusted text.

Every message content is replaced by a sentinel before rendering, so after rendering we know
exactly which characters came from the template (trusted scaffolding: tokenized with special
tokens) and which came from a user, a document or a tool (untrusted: tokenized as plain text, so
`<|im_start|>` inside it stays six harmless tokens of text).

Not handled: templates that inspect content (`message.content.startswith(...)`) see the sentinel.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tooltoken.tools import ConfigError

_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use code points: never in real text we render


@dataclass(frozen=True)
class Piece:
    text: str
    trusted: bool
    turn: bool = False  # the content of a conversation turn (not the system prompt): where the static prefix ends


def _raise(message: str) -> None:
    raise TemplateError(message)


@lru_cache(maxsize=16)
def _compile(source: str) -> Any:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    try:
        return env.from_string(source)
    except TemplateError as exc:
        raise ConfigError(f"the model's chat template does not compile: {exc}") from exc


def render(
    source: str,
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None = None,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
    trusted: frozenset[int] = frozenset(),
    extra: dict[str, Any] | None = None,
) -> list[Piece]:
    """Render `messages`; return the text as trusted and untrusted pieces, in order.

    `trusted` holds the indexes of messages whose content is ours (the system prompt we built).
    """
    contents: list[str] = []
    owners: list[int] = []
    masked = []
    for i, message in enumerate(messages):
        m = dict(message)
        content = m.get("content")
        if isinstance(content, str):
            m["content"] = f"{_OPEN}{len(contents)}{_CLOSE}"
            contents.append(content)
            owners.append(i)
        masked.append(m)
    try:
        text = _compile(source).render(
            messages=masked,
            tools=tools or None,
            add_generation_prompt=add_generation_prompt,
            bos_token=bos_token,
            eos_token=eos_token,
            **(extra or {}),
        )
    except TemplateError as exc:
        raise ConfigError(f"the model's chat template refused these messages: {exc}") from exc
    pieces: list[Piece] = []
    rest = text
    while _OPEN in rest:
        before, _, after = rest.partition(_OPEN)
        index, _, rest = after.partition(_CLOSE)
        if before:
            pieces.append(Piece(before, True))
        if contents[int(index)]:
            owner = owners[int(index)]
            pieces.append(Piece(contents[int(index)], owner in trusted, messages[owner].get("role") != "system"))
    if rest:
        pieces.append(Piece(rest, True))
    return pieces


@dataclass(frozen=True)
class TurnMarkers:
    """Scaffolding between turns, read off the template itself (works for any family)."""

    assistant_to_user: str  # closes an assistant turn and opens a user turn
    user_to_assistant: str  # closes a user turn and opens the assistant's


def turn_markers(source: str, bos_token: str = "", eos_token: str = "") -> TurnMarkers:
    msgs = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    pieces = render(source, msgs, add_generation_prompt=True, bos_token=bos_token, eos_token=eos_token)
    texts = [p.text for p in pieces]
    try:
        i_b = next(i for i, p in enumerate(pieces) if not p.trusted and p.text == "b")
        i_c = next(i for i, p in enumerate(pieces) if not p.trusted and p.text == "c" and i > i_b)
    except StopIteration as exc:
        raise ConfigError("cannot find turn boundaries in the model's chat template") from exc
    return TurnMarkers("".join(texts[i_b + 1 : i_c]), "".join(texts[i_c + 1 :]))
