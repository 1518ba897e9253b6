"""`tooltoken bench controller`: what the controller costs, measured side by side in one process.

- stream_vs_raw: decode tokens/s of `Agent.stream` ÷ raw `Llama.generate`, same prompt, same
  greedy output, timed from the first token to the last (prompt evaluation excluded on both sides,
  so the figure is the controller's per-token overhead alone).
- evaluated_per_call / inserted_per_call / call_tokens_per_call: after the prompt, how many
  tokens llama.cpp evaluated per tool call, against what the controller inserted (call
  scaffolding and result turn) and the canonical call's own tokens.
- roundtrip_vs_reprompt: seconds from a call's completion (the model has written it) through
  running the tool and inserting the result to the next answer token, ÷ seconds for
  `create_chat_completion` on the same `Llama` to reach its first token when the whole
  conversation (with the call and its result) is sent again, as a chat-model wrapper does.
"""

from __future__ import annotations

__all__ = ["bench_controller"]

import statistics
import time
from typing import Any

QUESTIONS = [
    "What is 1234 * 5678?",
    "What is 17% of 2400?",
    "How much is 98765 + 43210?",
    "What is 2 to the power of 20?",
    "Divide 7 by 3.",
    "What is the square root of 1764?",
]


def _raw_decode_rate(llm: Any, tokens: list[int], n: int) -> float:
    llm.reset()
    first = last = 0.0
    count = 0
    for tok in llm.generate(tokens, temp=0.0, top_k=1, repeat_penalty=1.0):
        now = time.perf_counter()
        count += 1
        if count == 1:
            first = now
        last = now
        if count >= n:
            break
    return (count - 1) / (last - first) if count > 1 else 0.0


def _agent_decode_rate(agent: Any, question: str, n: int) -> tuple[float, int]:
    from tooltoken import Final, TextDelta

    agent.backend.llm.reset()
    first = last = 0.0
    final = None
    for ev in agent.stream(question, tool_choice="none", max_tokens=n):
        if isinstance(ev, TextDelta):
            last = time.perf_counter()
            first = first or last
        elif isinstance(ev, Final):
            final = ev
    tokens = final.usage.completion_tokens
    return ((tokens - 1) / (last - first) if tokens > 1 else 0.0), tokens


def bench_controller(model: str | None = "smollm2-135m", repeats: int = 3, n_tokens: int = 128) -> dict[str, Any]:
    from tooltoken import Agent, Final
    from tooltoken._llama_turns import LlamaTurns
    from tooltoken.tools.calculator import calculator

    agent = Agent(model=model, tools=[calculator])
    llm = agent.backend.llm

    # 1. streaming overhead
    question = "Write a short story about a robot who learns to paint."
    plain = Agent(agent.backend, tools=[])
    pieces = plain.render(plain.messages(question))
    prompt_tokens = LlamaTurns(plain.backend, plain.fmt, [], plain.options, pieces).encode(pieces)
    ratios, agent_rates, raw_rates = [], [], []
    for _ in range(repeats):
        a_rate, n = _agent_decode_rate(plain, question, n_tokens)
        r_rate = _raw_decode_rate(llm, prompt_tokens, n)
        ratios.append(a_rate / r_rate)
        agent_rates.append(a_rate)
        raw_rates.append(r_rate)

    # 2. tokens per call, 3. round trip versus re-prompting
    finals: list[Final] = []
    mode = "auto"
    for choice in ("auto", "required"):
        mode = choice
        finals = []
        for q in QUESTIONS:
            llm.reset()
            finals.append(agent.run(q, tool_choice=choice, max_tokens=96))
        if sum(f.usage.tool_calls for f in finals) >= len(QUESTIONS) // 2:
            break
    calls = sum(f.usage.tool_calls for f in finals)
    evaluated = sum(f.usage.prompt_tokens_evaluated - f.usage.prompt_tokens for f in finals)
    inserted = sum(f.usage.inserted_tokens for f in finals)
    call_tokens = sum(f.usage.call_tokens for f in finals)
    roundtrip = [f.timings["roundtrip_s"] / f.timings["roundtrips"] for f in finals if f.timings.get("roundtrips")]
    reprompt = [_reprompt_first_token(agent, q, f) for q, f in zip(QUESTIONS, finals) if f.timings.get("roundtrips")]
    rt, rp = (statistics.median(roundtrip), statistics.median(reprompt)) if roundtrip else (float("nan"),) * 2
    return {
        "model": agent.backend.name,
        "stream_vs_raw": round(statistics.median(ratios), 4),
        "agent_decode_tok_s": round(statistics.median(agent_rates), 2),
        "raw_decode_tok_s": round(statistics.median(raw_rates), 2),
        "call_mode": mode,
        "tool_calls": calls,
        "evaluated_per_call": round(evaluated / calls, 2) if calls else None,
        "inserted_per_call": round(inserted / calls, 2) if calls else None,
        "call_tokens_per_call": round(call_tokens / calls, 2) if calls else None,
        "roundtrip_s": round(rt, 4),
        "reprompt_s": round(rp, 4),
        "roundtrip_vs_reprompt": round(rt / rp, 4) if roundtrip else None,
    }


def _reprompt_first_token(agent: Any, question: str, final: Any) -> float:
    """Send the conversation so far again, as a chat wrapper does; time to its first token."""
    call = final.tool_calls[0]
    result = final.tool_results[0]
    messages = agent.messages(question) + [
        {"role": "assistant", "content": f'<tool_call>\n{{"name": "{call.name}", "arguments": {call.arguments}}}\n</tool_call>'},
        {"role": "tool", "content": result.content},
    ]
    llm = agent.backend.llm
    start = time.perf_counter()
    for chunk in llm.create_chat_completion(messages=messages, stream=True, max_tokens=8, temperature=0.0):
        if chunk["choices"][0]["delta"].get("content"):
            break
    return time.perf_counter() - start
