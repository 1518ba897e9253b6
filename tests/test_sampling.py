"""Sampling: validation, settings and flags, what reaches llama.cpp, greedy calls, seeds."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pytest
from scripted import ScriptedBackend, chunks
from tooltoken import Agent, ConfigError, Sampling, tool
from tooltoken._backend import GenerateStats, LlamaBackend

CALL = '{"name": "calculator", "arguments": {"expression": "2+2"}}'


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    return {"2+2": "4"}.get(expression, "0")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("TOOLTOKEN_") and name != "TOOLTOKEN_CACHE_DIR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # no user config file


# -- the dataclass ----------------------------------------------------------------------------
@pytest.mark.unit
def test_defaults_are_llama_cpp_s_but_greedy():
    s = Sampling()
    assert (s.temperature, s.top_k, s.top_p, s.min_p, s.repeat_penalty, s.seed, s.call_greedy) == (
        0.0, 40, 0.95, 0.05, 1.0, 0, True)
    assert s.llama_kwargs()["temp"] == 0.0 and s.llama_kwargs()["top_k"] == 1


@pytest.mark.unit
@pytest.mark.parametrize("field, value, message", [
    ("temperature", -0.1, "temperature must be a number >= 0"),
    ("temperature", float("nan"), "temperature must be"),
    ("top_p", 0, r"top_p must be in \(0, 1\]"),
    ("top_p", 1.01, r"top_p must be in \(0, 1\]"),
    ("min_p", -0.01, r"min_p must be in \[0, 1\]"),
    ("min_p", 1.5, r"min_p must be in \[0, 1\]"),
    ("top_k", -1, "top_k must be an integer >= 0"),
    ("top_k", 2.5, "top_k must be an integer"),
    ("repeat_penalty", 0, "repeat_penalty must be a number > 0"),
    ("repeat_penalty", -1.1, "repeat_penalty must be a number > 0"),
    ("seed", -2, "seed must be an integer from 0"),
    ("seed", 2**32 - 1, "seed must be an integer from 0"),
    ("call_greedy", "yes", "call_greedy must be True or False"),
])
def test_bad_values_are_clear_config_errors(field, value, message):
    with pytest.raises(ConfigError, match=message):
        Sampling(**{field: value})
    with pytest.raises(ConfigError, match=message):  # before any model is loaded
        LlamaBackend("/nonexistent.gguf", **{field: value})
    with pytest.raises(ConfigError, match=message):
        Agent(ScriptedBackend([]), **{field: value})


@pytest.mark.unit
def test_edges_that_are_valid():
    for kw in ({"top_p": 1}, {"min_p": 0}, {"min_p": 1}, {"top_k": 0}, {"seed": -1}, {"seed": 2**32 - 2},
               {"temperature": 5}, {"repeat_penalty": 0.5}):
        Sampling(**kw)


@pytest.mark.unit
def test_call_bodies_are_greedy_unless_asked_otherwise():
    s = Sampling(temperature=0.8, top_k=20, top_p=0.9, min_p=0.1, repeat_penalty=1.2)
    assert s.llama_kwargs() == {"temp": 0.8, "top_k": 20, "top_p": 0.9, "min_p": 0.1, "repeat_penalty": 1.2}
    assert s.llama_kwargs(call=True) == {"temp": 0.0, "top_k": 1, "top_p": 1.0, "min_p": 0.0, "repeat_penalty": 1.0}
    sampled = replace(s, call_greedy=False)
    assert sampled.llama_kwargs(call=True) == sampled.llama_kwargs()
    # greedy text keeps the repeat penalty the user asked for (llama.cpp applies it before the argmax)
    assert Sampling(repeat_penalty=1.2).llama_kwargs()["repeat_penalty"] == 1.2


# -- settings and flags -----------------------------------------------------------------------
@pytest.mark.unit
def test_settings_layers_for_a_sampling_field(clean_env, tmp_path, monkeypatch):
    from tooltoken.app._settings import load_settings

    path = tmp_path / "tt.toml"
    path.write_text("top_p = 0.9\nmin_p = 0.2\nrepeat_penalty = 1.1\n")
    monkeypatch.setenv("TOOLTOKEN_TOP_P", "0.8")
    monkeypatch.setenv("TOOLTOKEN_MIN_P", "0.3")
    s = load_settings({"top_p": 0.7, "seed": None}, path)
    assert (s.top_p, s.min_p, s.repeat_penalty, s.top_k, s.seed) == (0.7, 0.3, 1.1, 40, 0)
    assert s.origin("top_p") == "flag --top-p"
    assert s.origin("min_p") == "env TOOLTOKEN_MIN_P"
    assert s.origin("repeat_penalty") == f"file {path}"
    assert s.origin("top_k") == s.origin("seed") == "default"
    kw = s.agent_kwargs()
    assert {k: kw[k] for k in ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed", "call_greedy")} == {
        "temperature": 0.0, "top_k": 40, "top_p": 0.7, "min_p": 0.3, "repeat_penalty": 1.1, "seed": 0,
        "call_greedy": True}
    Sampling(**{k: kw[k] for k in Sampling.__dataclass_fields__})  # the settings' ranges are Sampling's
    monkeypatch.setenv("TOOLTOKEN_TOP_K", "-3")
    with pytest.raises(ConfigError, match="top_k"):
        load_settings()


@pytest.mark.unit
def test_cli_flags_land_in_settings_as_flags_and_config_show_lists_them(clean_env, monkeypatch):
    pytest.importorskip("typer")
    from tooltoken.app import cli
    from typer.testing import CliRunner

    seen = {}

    class Loaded(Exception):
        pass

    def make_agent(s, model=None):
        seen["s"] = s
        raise Loaded

    monkeypatch.setattr(cli, "make_agent", make_agent)
    monkeypatch.setenv("TOOLTOKEN_TOP_K", "20")
    runner = CliRunner()
    for command in (["ask", "hi"], ["chat"]):
        result = runner.invoke(cli.app, [*command, "--temperature", "0.7", "--top-p", "0.9", "--min-p", "0.1",
                                         "--repeat-penalty", "1.2", "--seed", "-1"])
        assert isinstance(result.exception, Loaded), result.output
        s = seen.pop("s")
        assert (s.temperature, s.top_k, s.top_p, s.min_p, s.repeat_penalty, s.seed) == (0.7, 20, 0.9, 0.1, 1.2, -1)
        assert s.origin("temperature") == "flag --temperature" and s.origin("repeat_penalty") == "flag --repeat-penalty"
        assert s.origin("top_k") == "env TOOLTOKEN_TOP_K"
    result = runner.invoke(cli.app, ["ask", "hi", "--top-p", "0"])
    assert result.exit_code != 0 and "s" not in seen  # refused before any model loads

    result = runner.invoke(cli.app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["settings"]
    assert rows["top_k"] == {"value": 20, "origin": "env TOOLTOKEN_TOP_K"}
    for name, value in (("temperature", 0.0), ("top_p", 0.95), ("min_p", 0.05), ("repeat_penalty", 1.0),
                        ("seed", 0), ("call_greedy", True)):
        assert rows[name] == {"value": value, "origin": "default"}


# -- what reaches llama.cpp -------------------------------------------------------------------
class FakeLlama:
    """Just what LlamaBackend.generate touches: records the sampler arguments and the seed."""

    draft_model = None

    def __init__(self):
        self.input_ids, self.n_tokens = np.zeros(0, dtype=np.intc), 0
        self.calls: list[dict] = []
        self.seed = None

    def set_seed(self, seed):
        self.seed = seed

    def generate(self, tokens, **kwargs):
        self.calls.append({**kwargs, "seed": self.seed})
        return iter(())


def fake_backend(**sampling):
    backend = object.__new__(LlamaBackend)  # no model file: only generate() is exercised
    backend.llm, backend.sampling = FakeLlama(), Sampling(**sampling)
    backend.grammar = lambda schema: f"grammar of {sorted(schema)}"
    return backend


@pytest.mark.unit
def test_llama_backend_passes_the_settings_and_samples_calls_greedily():
    backend = fake_backend(temperature=0.8, top_k=20, top_p=0.9, min_p=0.1, repeat_penalty=1.1, seed=7)
    list(backend.generate([1, 2], grammar=None, stats=GenerateStats()))
    list(backend.generate([1, 2], grammar={"type": "object"}, stats=GenerateStats()))  # under a grammar: a call
    list(backend.generate([1, 2], grammar=None, stats=GenerateStats(), call=True))  # a call without a grammar
    text, grammar_call, plain_call = backend.llm.calls
    assert text == {"temp": 0.8, "top_k": 20, "top_p": 0.9, "min_p": 0.1, "repeat_penalty": 1.1, "grammar": None,
                    "seed": 7}
    greedy = {"temp": 0.0, "top_k": 1, "top_p": 1.0, "min_p": 0.0, "repeat_penalty": 1.0, "seed": 7}
    assert grammar_call == {**greedy, "grammar": "grammar of ['type']"}
    assert plain_call == {**greedy, "grammar": None}

    backend.sampling = replace(backend.sampling, call_greedy=False, seed=-1)
    list(backend.generate([1, 2], grammar=None, stats=GenerateStats(), call=True))
    assert backend.llm.calls[-1]["temp"] == 0.8 and backend.llm.calls[-1]["seed"] == 0xFFFFFFFF  # random


@pytest.mark.unit
def test_the_controller_marks_a_call_body_without_a_grammar():
    backend = ScriptedBackend([["Let me check. ", "<tool_call>", "\n"], chunks(CALL, 4), ["It is 4 [1]."]])
    final = Agent(backend, tools=[calculator], grammar=False, unsupported_notice=None, policy="plain").run("What is 2+2?")
    assert final.tool_calls[0].arguments == {"expression": "2+2"}
    assert backend.call_flags[:2] == [False, True]  # the answer's text, then the call's body


@pytest.mark.integration
def test_on_smollm2_calls_are_greedy_and_the_text_is_sampled(smollm2_path):
    backend = LlamaBackend(smollm2_path, n_ctx=1024, n_threads=1, temperature=0.8, seed=3)
    seen = []
    real = backend.llm.generate

    def spy(tokens, **kwargs):
        seen.append((kwargs["temp"], kwargs["top_k"], kwargs["grammar"] is not None))
        return real(tokens, **kwargs)

    backend.llm.generate = spy
    agent = Agent(backend, tools=[calculator], tool_choice="calculator", max_tokens=8)
    final = agent.run("What is 2+2?")
    assert final.tool_calls and final.tool_calls[0].name == "calculator"
    assert (0.0, 1, True) in seen  # the call body, under its grammar
    assert all(temp == 0.0 for temp, _, grammar in seen if grammar)
    assert (0.8, 40, False) in seen  # the answer's text


@pytest.mark.integration
def test_on_smollm2_the_same_seed_gives_the_same_text(smollm2_path):
    backend = LlamaBackend(smollm2_path, n_ctx=1024, n_threads=1, temperature=0.8, seed=0)
    agent = Agent(backend, max_tokens=20)

    def answer(seed):
        backend.sampling = replace(backend.sampling, seed=seed)
        # evaluate the prompt afresh each time: llama.cpp's kernels differ with the batch size, and a
        # prompt served from the KV cache would have its last token evaluated alone
        backend.llm.reset()
        return agent.run("Write one sentence about the sea.").answer

    first = answer(0)  # llama-cpp-python reads Llama(seed=0) as "random": the backend sets it itself
    assert answer(0) == first and len(first) > 20
    others = {answer(seed) for seed in (1, 2)}
    assert others != {first}  # another seed, another text
    assert answer(1) in others
