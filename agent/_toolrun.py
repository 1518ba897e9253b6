"""Running one tool call: validate, run with a timeout, turn every failure into readable text.

A tool that hangs cannot be killed from Python; it keeps its daemon thread until it returns, but
the answer goes on without it and the process can still exit.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from tooltoken.tools import Source, Tool, ToolArgumentError, ToolOutput, to_output


@dataclass
class Outcome:
    output: ToolOutput
    error: bool = False
    duration_s: float = 0.0
    sources: list[Source] = field(default_factory=list)


def run_tool(tool: Tool, arguments: dict, default_timeout: float) -> Outcome:
    start = time.perf_counter()
    try:
        args = tool.validate(arguments)
    except ToolArgumentError as exc:
        return Outcome(ToolOutput(f"error: {exc}"), True, time.perf_counter() - start)
    timeout = tool.timeout if tool.timeout is not None else default_timeout
    box: queue.Queue = queue.Queue(maxsize=1)

    def work() -> None:
        try:
            box.put((True, to_output(tool.fn(**args))))
        except BaseException as exc:  # the model reads what went wrong
            box.put((False, exc))

    threading.Thread(target=work, name=f"tool-{tool.name}", daemon=True).start()
    try:
        ok, value = box.get(timeout=timeout)
    except queue.Empty:
        return Outcome(
            ToolOutput(f"error: {tool.name} timed out after {timeout:g} s"), True, time.perf_counter() - start
        )
    duration = time.perf_counter() - start
    if not ok:
        message = str(value) or type(value).__name__
        return Outcome(ToolOutput(f"error: {type(value).__name__}: {message}"), True, duration)
    return Outcome(value, False, duration, list(value.sources))
