"""LangChain integration (`pip install 'tooltoken[langchain]'`): a retriever, tools, a chat model.

    >>> from tooltoken.app.langchain import ChatTooltoken, TooltokenRetriever, to_langchain_tool
    >>> retriever = TooltokenRetriever(backend=BM25Search(index_dir), k=3)        # doctest: +SKIP
    >>> retriever.invoke("who wrote war and peace")[0].metadata["id"]               # doctest: +SKIP
    'enwiki:War_and_Peace'
    >>> calc = to_langchain_tool(calculator)                                        # doctest: +SKIP
    >>> llm = ChatTooltoken(model="smollm2-135m").bind_tools([calc], tool_choice="calculator")  # doctest: +SKIP
    >>> llm.invoke("What is 2+2?").tool_calls[0]["args"]                            # doctest: +SKIP
    {'expression': '2+2'}

- `TooltokenRetriever` is a `BaseRetriever` over any tooltoken `SearchBackend` (BM25, HTTP,
  the vector index): one `Document` per hit, `id` and `metadata["id"]` the backend's stable id.
- `to_langchain_tool(tool)` makes a tooltoken `Tool` a LangChain `StructuredTool` (content and,
  as artifact, its sources); `from_langchain_tool` goes the other way, for `Agent(tools=...)`.
- `ChatTooltoken` is a `BaseChatModel` on the in-process agent. Tools bound with `bind_tools` are
  the caller's: when the model calls one, generation stops and the call comes back as
  `AIMessage.tool_calls` (written under the grammar of the bound schemas, so the arguments fit).
  Tools given as `ChatTooltoken(tools=[...])` are tooltoken tools that the agent runs itself,
  mid-answer; their calls, results and checked citations are in
  `response_metadata["tooltoken"]`. `with_structured_output` forces a call to the schema, so
  every method (function_calling, json_schema, json_mode) is grammar-constrained JSON.

Not handled: images and other non-text content (a ValueError), per-call `temperature` or other
sampling settings (set them on the model: they are fixed when the model is loaded), `max_retries`
(accepted; a local model is not retried).
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from operator import itemgetter
from typing import Any, AsyncIterator, Callable, Iterator, Sequence

try:
    from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
    from langchain_core.documents import Document as LCDocument
    from langchain_core.language_models import BaseChatModel, LanguageModelInput
    from langchain_core.language_models.chat_models import agenerate_from_stream, generate_from_stream
    from langchain_core.messages import AIMessageChunk, BaseMessage
    from langchain_core.messages.utils import convert_to_openai_messages
    from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
    from langchain_core.outputs import ChatGenerationChunk, ChatResult
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
    from langchain_core.tools import BaseTool, StructuredTool, ToolException
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from langchain_core.utils.pydantic import is_basemodel_subclass
except ImportError as exc:  # pragma: no cover - depends on the install
    from tooltoken.tools import ConfigError

    raise ConfigError("the LangChain integration needs its extra: pip install 'tooltoken[langchain]'") from exc

from pydantic import ConfigDict, Field, PrivateAttr

from tooltoken.tools import ConfigError, Tool

from tooltoken._bridge import aiter_in_thread
from tooltoken._sampling import Sampling

from .server import StopFilter, agent_messages, extra

__all__ = ["ChatTooltoken", "TooltokenRetriever", "from_langchain_tool", "to_langchain_tool", "to_langchain_tools"]


# -- retriever ----------------------------------------------------------------------------------
class TooltokenRetriever(BaseRetriever):
    """Documents from a tooltoken `SearchBackend`, best first.

    `full_text=True` puts the whole document (`backend.get(id).text`) in `page_content`;
    False puts the hit's snippet (no second lookup). `k` is the default count; `invoke(q, k=n)`
    overrides it.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    backend: Any
    k: int = 4
    full_text: bool = True

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForLLMRun | None = None, k: int | None = None
    ) -> list[LCDocument]:
        docs = []
        for hit in self.backend.search(query, self.k if k is None else k):
            text = self.backend.get(hit.id).text if self.full_text else hit.snippet
            metadata = {"id": hit.id, "title": hit.title, "location": hit.location, "score": hit.score,
                        "snippet": hit.snippet, "attribution": hit.attribution}
            docs.append(LCDocument(page_content=text, id=hit.id, metadata=metadata))
        return docs


# -- tools --------------------------------------------------------------------------------------
def to_langchain_tool(tool: Tool, *, timeout: float = 30.0) -> StructuredTool:
    """A LangChain tool that runs `tool` the way the agent does: arguments validated, a timeout
    (the tool's own, else `timeout`), and failures returned as an error message the model can
    read (`ToolMessage.status == "error"`) rather than raised."""
    from tooltoken._toolrun import run_tool

    def run(**arguments: Any) -> tuple[str, list[dict[str, Any]]]:
        outcome = run_tool(tool, arguments, timeout)
        if outcome.error:
            raise ToolException(outcome.output.content)
        return outcome.output.content, [dict(s.__dict__) for s in outcome.sources]

    schema: Any = tool.args_model if tool.args_model is not None else tool.parameters
    return StructuredTool.from_function(
        func=run,
        name=tool.name,
        description=tool.description or tool.name,
        args_schema=schema,
        response_format="content_and_artifact",
        handle_tool_error=True,
    )


def to_langchain_tools(tools: Sequence[Tool], *, timeout: float = 30.0) -> list[StructuredTool]:
    return [to_langchain_tool(t, timeout=timeout) for t in tools]


def from_langchain_tool(lc_tool: BaseTool) -> Tool:
    """A tooltoken `Tool` that calls a LangChain tool (its JSON schema becomes the call grammar)."""
    fn = convert_to_openai_tool(lc_tool)["function"]

    def call(**arguments: Any) -> Any:
        return lc_tool.invoke(arguments)

    return Tool.from_schema(fn["name"], fn.get("description", ""), fn.get("parameters") or
                            {"type": "object", "properties": {}}, call)


# -- chat model ---------------------------------------------------------------------------------
def _returned_to_caller(**_: Any) -> str:
    return "(this call is returned to the caller)"


def _tool_choice(choice: Any, names: list[str]) -> str | None:
    """LangChain/OpenAI tool_choice -> the agent's (auto, none, required or a name)."""
    if choice is None or choice == "auto":
        return None
    if choice is True or choice in ("any", "required"):
        return "required"
    if choice is False or choice == "none":
        return "none"
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name") or choice.get("name")
    if isinstance(choice, str) and choice in names:
        return choice
    raise ValueError(f"tool_choice {choice!r}: use auto, any, required, none or a bound tool's name "
                     f"({', '.join(names)})")


class ChatTooltoken(BaseChatModel):
    """A chat model on the in-process tooltoken agent (see the module docstring)."""

    model: str | None = Field(default_factory=lambda: os.environ.get("TOOLTOKEN_MODEL") or None)
    """A model pack name or a .gguf path (default: $TOOLTOKEN_MODEL, else the default pack)."""
    agent: Any = Field(default=None, exclude=True)
    """An `Agent` to use instead of loading `model` (its tools are joined with `tools`)."""
    tools: list[Any] = Field(default_factory=list, exclude=True)
    """tooltoken tools the agent runs itself, mid-answer."""
    system: str | None = None
    temperature: float = Sampling.temperature
    """Sampling (see `tooltoken.Sampling`): temperature 0 is greedy; tool calls and structured
    output are written greedily at any temperature unless `call_greedy=False`. These configure the
    model loaded from `model`; an `agent` given samples as it was made."""
    top_k: int = Sampling.top_k
    top_p: float = Sampling.top_p
    min_p: float = Sampling.min_p
    repeat_penalty: float = Sampling.repeat_penalty
    call_greedy: bool = Sampling.call_greedy
    max_tokens: int | None = None
    stop: list[str] | None = None
    n_ctx: int = 4096
    seed: int = 0
    max_call_tokens: int | None = None
    """Tokens one tool call (or structured output) may take (None: the agent's default)."""
    timeout: float | None = None
    """Wall-clock budget of one answer, in seconds (the agent's max_time_s)."""
    max_retries: int = 0
    streaming: bool = False

    _agents: dict[Any, Any] = PrivateAttr(default_factory=dict)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "tooltoken"

    @property
    def model_name(self) -> str:
        if self.agent is not None:
            return self.agent.backend.name
        from tooltoken._models import DEFAULT_MODEL

        return self.model or DEFAULT_MODEL

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model_name, "max_tokens": self.max_tokens, "n_ctx": self.n_ctx,
                **self._sampling()}

    def _sampling(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p, "min_p": self.min_p,
                "repeat_penalty": self.repeat_penalty, "seed": self.seed, "call_greedy": self.call_greedy}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "tooltoken"
        params["ls_model_name"] = kwargs.get("model") or self.model_name
        params["ls_temperature"] = self.temperature
        if kwargs.get("max_tokens", self.max_tokens) is not None:
            params["ls_max_tokens"] = kwargs.get("max_tokens", self.max_tokens)
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # -- tools and structured output ----------------------------------------------------------
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable | BaseTool],
        *,
        tool_choice: str | dict | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, BaseMessage]:
        """Declare the caller's tools; a call to one ends the answer and comes back in `tool_calls`.
        tool_choice: auto (None), any/required/True, none/False, or a tool's name."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        names = [t["function"]["name"] for t in formatted]
        _tool_choice(tool_choice, names)  # fail here, not at the first call
        return super().bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        include_raw: bool = False,
        method: str = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Output that fits `schema`: a forced call under the schema's grammar, for every `method`
        (function_calling, json_schema, json_mode; `strict` changes nothing, the grammar is strict)."""
        if kwargs:
            raise ValueError(f"unsupported arguments {sorted(kwargs)}")
        if method not in ("function_calling", "json_schema", "json_mode"):
            raise ValueError(f"method {method!r}: use function_calling, json_schema or json_mode")
        if schema is None:
            if method != "json_mode":
                raise ValueError(f"method {method!r} needs a schema")
            schema = {"title": "json_output", "description": "Any JSON object.", "type": "object", "properties": {}}
        name = convert_to_openai_tool(schema)["function"]["name"]
        llm = self.bind_tools([schema], tool_choice=name,
                              ls_structured_output_format={"kwargs": {"method": method, "strict": strict},
                                                           "schema": schema})
        parser: Runnable
        if isinstance(schema, type) and is_basemodel_subclass(schema):
            parser = PydanticToolsParser(tools=[schema], first_tool_only=True)
        else:
            parser = JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        if include_raw:
            parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
            fallback = RunnablePassthrough.assign(parsed=lambda _: None)
            return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")
        return llm | parser

    # -- generation ---------------------------------------------------------------------------
    def _agent_for(self, model: str | None, bound: list[dict[str, Any]]) -> Any:
        """An Agent with our tools plus a stand-in for each bound tool (cached per model and tools)."""
        key = (model or self.model, json.dumps(bound, sort_keys=True, default=str))
        with self._lock:
            if key in self._agents:
                return self._agents[key]
            from tooltoken import Agent

            stand_ins = []
            for spec in bound:
                fn = spec["function"]
                params = fn.get("parameters") or {"type": "object", "properties": {}}
                stand_ins.append(Tool.from_schema(fn["name"], fn.get("description", ""), params, _returned_to_caller))
            base = self.agent.backend if (self.agent is not None and model is None) else (model or self.model)
            own = list(self.agent.tools) if self.agent is not None else []
            kw: dict[str, Any] = {"system": self.system}
            if self.agent is None or model is not None:
                kw.update(n_ctx=self.n_ctx, **self._sampling())
            elif self.system is None:
                kw["system"] = self.agent.system
            if self.agent is not None:  # the given agent's options and router hold here too
                kw.update(vars(self.agent.options), router=self.agent.router, inline_tools=self.agent.inline_tools)
            if stand_ins:  # tools bound by the caller: the caller's loop decides, every tool declared
                kw["policy"] = "plain"
            agent = Agent(model=base, tools=[*own, *self.tools, *stand_ins], **kw)
            self._agents[key] = agent
            return agent

    def _prepare(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]):
        kwargs = dict(kwargs)
        bound = kwargs.pop("tools", None) or []
        choice = kwargs.pop("tool_choice", None)
        model = kwargs.pop("model", None)
        max_tokens = kwargs.pop("max_tokens", self.max_tokens)
        kwargs.pop("ls_structured_output_format", None)
        kwargs.pop("stream", None)
        if kwargs:
            raise ValueError(f"ChatTooltoken does not take {sorted(kwargs)} per call "
                             "(valid: tools, tool_choice, model, max_tokens, stop)")
        agent = self._agent_for(model, bound)  # cached; each answer browses afresh (Agent.stream)
        names = [t["function"]["name"] for t in bound]
        options: dict[str, Any] = {}
        mapped = _tool_choice(choice, names)
        if mapped is not None:
            options["tool_choice"] = mapped
        if max_tokens is not None:
            options["max_tokens"] = max_tokens
        if self.timeout is not None:
            options["max_time_s"] = self.timeout
        if self.max_call_tokens is not None:
            options["max_call_tokens"] = self.max_call_tokens
        msgs = agent_messages(convert_to_openai_messages(messages), agent.fmt)
        return agent, msgs, options, set(names), model or self.model_name, StopFilter(stop or self.stop)

    def _chunks(self, agent: Any, msgs: list[dict], options: dict[str, Any], bound: set[str], name: str,
                stopper: StopFilter, cancel: threading.Event) -> Iterator[ChatGenerationChunk]:
        from tooltoken import Final, TextDelta, ToolCall

        calls = 0
        for event in agent.stream(msgs, cancel=cancel, **options):
            if isinstance(event, TextDelta) and not cancel.is_set():
                text = stopper.feed(event.text)
                if stopper.hit:
                    cancel.set()
                if text:
                    yield ChatGenerationChunk(message=AIMessageChunk(content=text))
            elif isinstance(event, ToolCall) and event.name in bound and not event.inline and not cancel.is_set():
                cancel.set()  # the caller runs it: stop this answer here
                chunk = {"name": event.name, "args": json.dumps(event.arguments, ensure_ascii=False),
                         "id": f"call_{uuid.uuid4().hex[:24]}", "index": calls}  # unique across turns
                calls += 1
                yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[chunk]))
            elif isinstance(event, Final):
                tail = stopper.flush()
                if tail:
                    yield ChatGenerationChunk(message=AIMessageChunk(content=tail))
                if calls:
                    reason = "tool_calls"
                elif stopper.hit:
                    reason = "stop"
                else:
                    reason = "length" if event.stop_reason in ("length", "context") else "stop"
                info = extra(event)
                info["tool_calls"] = [c for c in info["tool_calls"] if c["name"] not in bound]
                info["tool_results"] = [r for r in info["tool_results"] if r["name"] not in bound]
                usage = {"input_tokens": event.usage.prompt_tokens, "output_tokens": event.usage.completion_tokens,
                         "total_tokens": event.usage.prompt_tokens + event.usage.completion_tokens}
                message = AIMessageChunk(
                    content="", chunk_position="last", usage_metadata=usage,  # type: ignore[arg-type]
                    response_metadata={"model_name": name, "model_provider": "tooltoken", "finish_reason": reason,
                                       "tooltoken": info},
                )
                yield ChatGenerationChunk(message=message, generation_info={"finish_reason": reason})

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        agent, msgs, options, bound, name, stopper = self._prepare(messages, stop, kwargs)
        cancel = threading.Event()
        chunks = self._chunks(agent, msgs, options, bound, name, stopper, cancel)
        try:
            for chunk in chunks:
                if run_manager and chunk.message.content:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        finally:
            cancel.set()
            chunks.close()

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        agent, msgs, options, bound, name, stopper = self._prepare(messages, stop, kwargs)
        cancel = threading.Event()
        async for chunk in aiter_in_thread(lambda: self._chunks(agent, msgs, options, bound, name, stopper, cancel),
                                           cancel):
            if run_manager and chunk.message.content:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop=stop, run_manager=run_manager, **kwargs))

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return await agenerate_from_stream(self._astream(messages, stop=stop, run_manager=run_manager, **kwargs))
