"""`tooltoken chat` as a person uses it: in a real terminal (tmux), typing, reading the screen.

The unit tests check the drawing of one answer (tool lines, footnotes) on a recorded console.
The integration tests start `tooltoken chat` on SmolLM2-135M inside tmux, type into it with
send-keys and assert on capture-pane: the streamed answer, the tool line with its duration, the
footnote, the slash commands (/tools, /sources, /help, /model, /prompt, /save, /reset), input
history (Up arrow), Ctrl-C stopping an answer, Ctrl-D leaving.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from tooltoken import Citation, Final, ToolCall, ToolResult

rich = pytest.importorskip("rich")
from rich.console import Console  # noqa: E402

from tooltoken.app.cli import AnswerView, footnotes  # noqa: E402


def plain(lines) -> list[str]:
    return [line.plain for line in lines]


@pytest.mark.unit
def test_footnotes_verified_unverified_and_uncited():
    final = Final(
        answer='It is 4 [1]. Tolstoy wrote it: "a literary work" [2] [7]',
        stop_reason="stop",
        citations=[
            Citation(1, True, tool="calculator", arguments={"expression": "2+2"}),
            Citation(2, True, tool="quote", arguments={"text": "a literary work"},
                     sources=[{"id": "enwiki:War_and_Peace", "title": "War and Peace", "location": "L1",
                               "text": "War and Peace is a literary work by Leo Tolstoy."}]),
            Citation(7, False, reason="no tool result has this number"),
        ],
        tool_calls=[ToolCall("c1", "calculator", {"expression": "2+2"}), ToolCall("c2", "quote", {"text": "x"}),
                    ToolCall("c3", "search", {"query": "tolstoy"})],
        tool_results=[ToolResult("c1", "calculator", "4", 1), ToolResult("c2", "quote", "Quote saved", 2),
                      ToolResult("c3", "search", "Results for tolstoy", 3)],
    )
    for c in final.citations:  # the fields of the citation checker, where this build has them
        if c.marker == 2 and hasattr(c, "quote"):
            c.quote, c.title, c.source_id, c.location = "a literary work", "War and Peace", "enwiki:War_and_Peace", "L1"
    lines = plain(footnotes(final))
    assert lines[0] == "Sources"
    assert lines[1] == ' [1] ✓ calculator({"expression": "2+2"}) — “4”'
    assert lines[2].startswith(" [2] ✓ War and Peace · enwiki:War_and_Peace · L1 — “")
    assert "a literary work" in lines[2]
    assert lines[3] == " [7] ✗ unverified: no tool result has this number"
    assert lines[4] == ' [3] · search({"query": "tolstoy"}) — not cited: “Results for tolstoy”'


@pytest.mark.unit
def test_footnotes_show_a_failed_marker_and_the_fact_found_in_its_result():
    final = Final(
        answer="Refunds take 38 days. See the policy [1].", stop_reason="stop",
        citations=[Citation(1, False, tool="retrieve", reason="the cited result does not hold what the sentence states"),
                   Citation(1, True, tool="retrieve", title="Refunds", source_id="c9", quote="38", inferred=True)],
        tool_calls=[ToolCall("c1", "retrieve", {"query": "refunds"})],
        tool_results=[ToolResult("c1", "retrieve", "Refunds take 38 days.", 1)],
    )
    assert plain(footnotes(final)) == [
        "Sources", " [1] ✗ unverified: the cited result does not hold what the sentence states",
        " [1] ✓ Refunds · c9 — “38”"]


@pytest.mark.unit
def test_plain_view_draws_tool_lines_between_text():
    buf = io.StringIO()
    view = AnswerView(Console(file=buf, width=100, color_system=None), markdown=False)
    view.text_delta("Let me compute.")
    view.tool_call(ToolCall("c1", "calculator", {"expression": "2+2"}))
    view.tool_result(ToolResult("c1", "calculator", "4", 1, duration_s=0.0123))
    view.text_delta("It is 4 [1].")
    view.final(Final("Let me compute.It is 4 [1].", "stop",
                     citations=[Citation(1, True, tool="calculator", arguments={"expression": "2+2"})],
                     tool_calls=[ToolCall("c1", "calculator", {"expression": "2+2"})],
                     tool_results=[ToolResult("c1", "calculator", "4", 1)]))
    assert buf.getvalue().splitlines() == [
        "Let me compute.",
        '→ calculator({"expression": "2+2"})',
        "← [1] 4 · 12 ms",
        "It is 4 [1].",
        "Sources",
        ' [1] ✓ calculator({"expression": "2+2"}) — “4”',
    ]


# -- in a real terminal -------------------------------------------------------------------------
APT = "apt-get update && apt-get install -y --no-install-recommends tmux"


@pytest.fixture(scope="module")
def tmux():
    """The tmux binary; installed with apt-get when missing and we are root (as in CI)."""
    path = shutil.which("tmux")
    if path is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        done = subprocess.run(["sh", "-c", APT], capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        path = shutil.which("tmux")
        if path is None:
            pytest.skip(f"tmux is not installed and `{APT}` failed: {done.stderr.strip()[-300:]}")
    if path is None:
        pytest.skip(f"tmux is not installed and cannot be installed here (needs root and apt-get): {APT}")
    return path


class Terminal:
    """One tmux session running a command; type into it and read its screen."""

    def __init__(self, tmux: str, command: list[str], env: dict[str, str], width: int = 140, height: int = 50):
        self.tmux, self.name = tmux, f"tt-{uuid.uuid4().hex[:8]}"
        # the pane's size also as COLUMNS/LINES: a tmux server started earlier at 80x24 can keep
        # new detached sessions at its size, and rich then folds long lines with hard breaks
        # (which `capture-pane -J` cannot join); told 140, it leaves wrapping to the pane
        env = {**env, "COLUMNS": str(width), "LINES": str(height)}
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        shell = f"env {exports} {shlex.join(command)}; echo '[exited]' $?; sleep 600"
        subprocess.run([tmux, "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), shell],
                       check=True)

    def keys(self, *keys: str, literal: bool = False) -> None:
        subprocess.run([self.tmux, "send-keys", "-t", self.name, *(["-l"] if literal else []), *keys], check=True)

    def type(self, text: str) -> None:
        self.keys(text, literal=True)
        self.keys("Enter")

    def screen(self) -> str:
        out = subprocess.run([self.tmux, "capture-pane", "-p", "-J", "-t", self.name, "-S", "-500"],
                             capture_output=True, text=True, check=True)
        return out.stdout

    def wait(self, pattern: str, timeout: float = 300, after: int = 0) -> str:
        """The screen once `pattern` (a regex) shows up past character `after`."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if re.search(pattern, screen[after:], re.M):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on the screen after {timeout:g} s:\n{screen}")
            time.sleep(0.3)

    def close(self) -> None:
        subprocess.run([self.tmux, "kill-session", "-t", self.name], capture_output=True)


def chat_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from tooltoken.app.cli import main; main()", "chat", "--model", "smollm2-135m",
            "--tools", "calculator", *args]


@pytest.fixture
def chat_env(tmp_path):
    keep = ("PATH", "HOME", "LANG", "TOOLTOKEN_CACHE_DIR", "PYTHONPATH", "VIRTUAL_ENV", "HF_HUB_OFFLINE",
            "TOOLTOKEN_THREADS", "TOOLTOKEN_BATCH_INVARIANT")  # the numerics configuration CI runs under
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(TERM="xterm-256color", LANG=env.get("LANG", "C.UTF-8"), XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               TOOLTOKEN_HISTORY_FILE=str(tmp_path / "history"))
    return env


@pytest.mark.integration
def test_chat_in_a_terminal(tmux, smollm2_path, chat_env, tmp_path):
    term = Terminal(tmux, chat_command("--tool-choice", "calculator", "--max-tokens", "24"), chat_env)
    try:
        term.wait(r"/help for commands")
        term.type("/tools")
        term.wait(r"calculator\(expression\)")

        question = "What is 1234 * 5678?"
        term.type(question)
        screen = term.wait(r"^Sources$")
        # the call (the expression is the model's: any text, cut at 120 characters with "…")
        assert re.search(r'^→ calculator\(\{"expression": ".*\)$', screen, re.M), screen
        assert re.search(r"^← \[1\] \S.* · \d+ ms$", screen, re.M), screen  # its result and duration
        assert re.search(r"^ \[1\] (✓|✗|·) ", screen, re.M), screen  # the footnote of source 1
        after_sources = screen[screen.rindex("Sources"):]
        assert "calculator" in after_sources
        # the answer streamed between the tool line and the footnotes
        body = screen[screen.rindex("← [1]"):screen.rindex("Sources")]
        assert body.strip().splitlines()[1:], screen

        mark = len(term.screen())
        term.type("/sources")  # the last answer's tool results in full
        term.wait(r'\[1\] calculator\(\{"expression": .*\) · \d+ ms · (✓ cited|✗|not cited)', after=mark - 200)
        mark = len(term.screen())
        term.type("/help")
        term.wait(r"^\s*/save FILE\s+save the conversation", after=mark - 200)
        mark = len(term.screen())
        term.type("/model")
        term.wait(r"n_ctx=\d+", after=mark - 200)

        term.type("/prompt")
        term.wait(r"<\|im_start\|>system")
        save = tmp_path / "chat.md"
        mark = len(term.screen())
        term.type(f"/save {save}")
        term.wait(r"saved 1 answer to", after=mark - 200)
        assert question in save.read_text()

        mark = len(term.screen())
        term.keys(*["Up"] * 6)  # readline history: back past /save, /prompt, /model, /help, /sources
        term.wait(r"^> " + re.escape(question) + r"\s*$", timeout=30, after=mark - 200)
        term.keys("C-u")
        term.keys("C-d")  # Ctrl-D leaves
        term.wait(r"^\[exited\] 0$", timeout=60)
        assert question in (tmp_path / "history").read_text()
    finally:
        term.close()


@pytest.mark.integration
def test_ctrl_c_stops_the_answer_and_the_chat_goes_on(tmux, smollm2_path, chat_env):
    term = Terminal(tmux, chat_command("--tool-choice", "none", "--max-tokens", "600"), chat_env)
    try:
        term.wait(r"/help for commands")
        term.type("Write a very long story about a cat who travels the world.")
        mark = len(term.screen())
        term.wait(r"\w+ \w+ \w+", after=mark)  # the answer has started streaming
        term.keys("C-c")
        screen = term.wait(r"^\(stopped\)$", timeout=120)
        assert "Sources" not in screen[mark:]
        term.wait(r"^> $", timeout=30)  # back at the prompt, model still loaded
        term.type("/reset")
        term.wait(r"conversation cleared")
        term.keys("C-d")
        term.wait(r"^\[exited\] 0$", timeout=60)
    finally:
        term.close()
