"""A scripted backend: the token seam of `Backend`, with no model behind it.

Each call to `generate` plays the next script: a list of strings, each one token. Right after a
call's `</tool_call>` the controller asks whether another call follows in the same turn; the
backend then ends the turn (as a model does) unless the next script begins with `SAME_TURN`:
that script is then played right after the call (a model writing parallel calls). Plain text
is tokenized one character a token, special strings to their own ids, so a test can see exactly
which control tokens a context holds. The KV cache is imitated: only the part of the token list
that differs from what was "evaluated" before counts as evaluated.
"""

from __future__ import annotations

from typing import Any, Iterator

from tooltoken._backend import GenerateStats

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL = ["</s>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"]
EOG = {0, 2}
SAME_TURN = "<same turn>"  # first item of a script played right after a call's `</tool_call>`


class ScriptedBackend:
    name = "scripted"
    bos_text = ""
    eos_text = "</s>"
    add_bos = False

    def __init__(self, scripts: list[list[str]], n_ctx: int = 8192, chat_template: str = CHATML,
                 special: tuple[str, ...] = (), eog: tuple[str, ...] = ()) -> None:
        self.scripts = list(scripts)
        self.n_ctx = n_ctx
        self.chat_template = chat_template
        self.special = SPECIAL + [s for s in special if s not in SPECIAL]
        self.vocab: list[str] = list(self.special)
        self.ids: dict[str, int] = {s: i for i, s in enumerate(self.special)}
        self.eog = EOG | {self.ids[s] for s in eog}
        self.held: list[int] = []
        self.call_flags: list[bool] = []  # `call` of every generate, peeks included
        self.requests: list[tuple[list[int], Any]] = []  # (tokens, grammar) of every generate that played a script
        self.peeks: list[list[int]] = []  # contexts after a call where the turn ended with no other call
        # what side_logits answers, in order: the yes-no log-odds of each call check; with none
        # left, a sure yes (the check is on by default for a caller's own tools: tests of other
        # things see their calls made)
        self.judgements: list[float] = []
        self.checked: list[list[int]] = []  # the prompts side_logits was asked about
        self.bans: list[list[int]] = []  # `ban` of every generate that played a script

    def _id(self, s: str) -> int:
        if s not in self.ids:
            self.ids[s] = len(self.vocab)
            self.vocab.append(s)
        return self.ids[s] + (0 if s in self.special else 1000)

    def tokenize(self, text: str, special: bool) -> list[int]:
        out: list[int] = []
        i = 0
        while i < len(text):
            hit = next((s for s in self.special if special and text.startswith(s, i)), None)
            if hit:
                out.append(self.ids[hit])
                i += len(hit)
            else:
                out.append(self._id(text[i]))
                i += 1
        return out

    def detokenize(self, tokens: list[int]) -> bytes:
        return "".join(self.vocab[t] if t < 1000 else self.vocab[t - 1000] for t in tokens).encode()

    def is_eog(self, token: int) -> bool:
        return token in self.eog

    def token(self, s: str) -> int:
        """The id the model would emit for `s` (a special string gets its control token)."""
        return self.ids[s] if s in self.special else self._id(s)

    def _opens_call(self) -> bool:
        if self.scripts and self.scripts[0][:1] == [SAME_TURN]:
            self.scripts[0] = self.scripts[0][1:]
            return True
        return False

    def side_logits(self, tokens: list[int], candidates: list[int]) -> list[float]:
        self.checked.append(list(tokens))
        score = self.judgements.pop(0) if self.judgements else 20.0
        yes = {self.token("y"), self.token("Y")}  # first tokens of "yes" and "Yes", one character a token
        return [score if c in yes else 0.0 for c in candidates]

    def generate(self, tokens: list[int], *, grammar: Any, stats: GenerateStats, call: bool = False,
                 ban: Any = ()) -> Iterator[int]:
        self.call_flags.append(call)
        prefix = 0
        for a, b in zip(self.held, tokens):
            if a != b:
                break
            prefix += 1
        stats.reused += prefix
        stats.evaluated += len(tokens) - prefix
        if tokens and tokens[-1] == self.ids["</tool_call>"] and not self._opens_call():
            self.peeks.append(list(tokens))
            self.held = list(tokens)  # a model ends its call turn here unless it opens another call
            yield min(self.eog)
            return
        self.requests.append((list(tokens), grammar))
        self.bans.append(list(ban))
        script = self.scripts.pop(0) if self.scripts else []
        self.held = list(tokens)
        for s in script:
            t = self.token(s)
            yield t
            self.held.append(t)
        yield min(self.eog)


def chunks(text: str, size: int = 3) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]
