"""The numerics knobs: `TOOLTOKEN_THREADS` and `TOOLTOKEN_BATCH_INVARIANT` reach LlamaBackend's
settings where its arguments are not given, so CI can run the whole suite under a second
llama.cpp configuration without code changes (.ci/run)."""

from __future__ import annotations

import os

import pytest

from tooltoken import ConfigError, LlamaBackend


class Loaded(Exception):
    """Raised by the stand-in for llama_cpp.Llama, carrying what llama.cpp would have been given."""


@pytest.fixture
def settings(monkeypatch):
    """What LlamaBackend(**kwargs) asks llama.cpp for, under the environment the test sets: no
    model loads (llama_cpp.Llama is a stand-in that stops at the call, noting whether weight
    repacking was on for it)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    import llama_cpp.llama as module

    for name in ("TOOLTOKEN_THREADS", "TOOLTOKEN_BATCH_INVARIANT"):
        monkeypatch.delenv(name, raising=False)  # CI's second pass sets them
    monkeypatch.setenv("TOOLTOKEN_REPACK", "1")  # no probe of the CPU: repacking follows batch_invariant

    class Stub:
        def __init__(self, **kwargs):
            raise Loaded({"repack": module.llama_cpp.llama_model_default_params().use_extra_bufts, **kwargs})

    monkeypatch.setattr(llama_cpp, "Llama", Stub)

    def asked(**kwargs):
        with pytest.raises(Loaded) as info:
            LlamaBackend("model.gguf", **kwargs)
        return info.value.args[0]

    return asked


def invariant(asked: dict) -> bool:
    import llama_cpp

    return not asked["repack"] and asked.get("type_k") == asked.get("type_v") == llama_cpp.GGML_TYPE_Q8_0


@pytest.mark.unit
def test_without_the_variables_the_defaults_hold(settings):
    asked = settings()
    assert asked["n_threads"] == max(1, os.cpu_count() or 1)
    assert asked["repack"] and "type_k" not in asked and asked["flash_attn"]


@pytest.mark.unit
def test_the_variables_reach_the_backend(settings, monkeypatch):
    monkeypatch.setenv("TOOLTOKEN_THREADS", "1")
    monkeypatch.setenv("TOOLTOKEN_BATCH_INVARIANT", "1")
    asked = settings()
    assert asked["n_threads"] == 1 and invariant(asked)
    monkeypatch.setenv("TOOLTOKEN_THREADS", "3")
    monkeypatch.setenv("TOOLTOKEN_BATCH_INVARIANT", "0")
    asked = settings()
    assert asked["n_threads"] == 3 and not invariant(asked) and asked["repack"]


@pytest.mark.unit
def test_arguments_given_win_over_the_variables(settings, monkeypatch):
    monkeypatch.setenv("TOOLTOKEN_THREADS", "1")
    monkeypatch.setenv("TOOLTOKEN_BATCH_INVARIANT", "1")
    asked = settings(n_threads=2, batch_invariant=False)
    assert asked["n_threads"] == 2 and not invariant(asked)
    monkeypatch.setenv("TOOLTOKEN_BATCH_INVARIANT", "0")
    assert invariant(settings(batch_invariant=True))


@pytest.mark.unit
@pytest.mark.parametrize("name, value", [("TOOLTOKEN_THREADS", "two"), ("TOOLTOKEN_THREADS", "0"),
                                         ("TOOLTOKEN_BATCH_INVARIANT", "yes")])
def test_a_bad_value_is_a_clear_error(settings, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        settings()


@pytest.mark.unit
def test_an_empty_variable_counts_as_unset(settings, monkeypatch):
    monkeypatch.setenv("TOOLTOKEN_THREADS", "")
    monkeypatch.setenv("TOOLTOKEN_BATCH_INVARIANT", " ")
    asked = settings()
    assert asked["n_threads"] == max(1, os.cpu_count() or 1) and not invariant(asked)


@pytest.mark.integration
def test_the_variables_reach_a_real_model(smollm2_path, monkeypatch):
    import llama_cpp

    monkeypatch.setenv("TOOLTOKEN_THREADS", "1")
    monkeypatch.setenv("TOOLTOKEN_BATCH_INVARIANT", "1")
    backend = LlamaBackend(smollm2_path, n_ctx=256)
    try:
        assert backend.batch_invariant and backend.llm.n_threads == 1
        params = backend.llm.context_params
        assert params.type_k == params.type_v == llama_cpp.GGML_TYPE_Q8_0  # a quantized KV cache
        assert not backend.llm.model_params.use_extra_bufts  # no weight repacking
    finally:
        backend.llm.close()
