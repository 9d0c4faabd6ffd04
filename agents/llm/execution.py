"""Running one function call: argument checking, errors the LLM can read, StopResponse."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import APIError, StopResponse, ToolError
from .chat_context import FunctionCall, FunctionCallOutput
from .run_context import RunContext
from .tool_schema import ToolArgumentError, coerce
from .tools import RawFunctionTool, Tool, ToolContext

logger = logging.getLogger("roomd.agents")

#: what the LLM sees when a tool failed in a way it did not mean to tell it about
INTERNAL_ERROR_OUTPUT = "An internal error occurred"


@dataclass(slots=True)
class ToolExecution:
    """The result of one function call.

    ``output`` goes into the chat context (``None`` when the tool raised
    ``StopResponse``: nothing to add, no reply this turn). ``raw_output`` is what the
    function returned, unchanged, so the caller can act on special values (a tool that
    returns another ``Agent`` hands the conversation over).
    """

    call: FunctionCall
    output: FunctionCallOutput | None
    raw_output: Any = None
    exception: BaseException | None = None

    @property
    def stop_response(self) -> bool:
        return isinstance(self.exception, StopResponse)


def _error(call: FunctionCall, message: str, exc: BaseException | None = None) -> ToolExecution:
    return ToolExecution(
        call=call,
        output=FunctionCallOutput(call_id=call.call_id, name=call.name, output=message, is_error=True),
        exception=exc,
    )


def output_text(value: Any) -> str:
    """The text the LLM sees for a tool's return value: JSON when possible, else ``str``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _arguments(tool: Tool, call: FunctionCall, run_context: RunContext[Any] | None) -> dict[str, Any]:
    """Keyword arguments for the call; raises ToolArgumentError for the LLM to read."""
    try:
        decoded = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as exc:
        raise ToolArgumentError(f"arguments are not valid JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise ToolArgumentError(f"arguments must be a JSON object, got {type(decoded).__name__}")
    if isinstance(tool, RawFunctionTool):
        kwargs: dict[str, Any] = {"raw_arguments": decoded}
        if tool.context_parameter is not None:
            kwargs[tool.context_parameter] = _need_context(tool, run_context)
        return kwargs
    params = tool.tool_parameters
    known = {p.name for p in params if not p.is_context}
    unknown = sorted(set(decoded) - known)
    if unknown:
        raise ToolArgumentError(f"unknown argument(s) {unknown}; expected {sorted(known)}")
    kwargs = {}
    for param in params:
        if param.is_context:
            kwargs[param.name] = _need_context(tool, run_context)
        elif param.name in decoded:
            kwargs[param.name] = coerce(decoded[param.name], param.annotation, param.name)
        elif param.required:
            raise ToolArgumentError(f"missing required argument {param.name!r}")
    return kwargs


def _need_context(tool: Tool, run_context: RunContext[Any] | None) -> RunContext[Any]:
    if run_context is None:
        raise RuntimeError(f"tool {tool.name!r} needs a RunContext but none was given")
    return run_context


async def _invoke(tool: Tool, kwargs: dict[str, Any]) -> Any:
    result = tool(**kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


async def execute_function_call(
    tool_ctx: ToolContext | Iterable[Tool],
    call: FunctionCall,
    run_context: RunContext[Any] | None = None,
) -> ToolExecution:
    """Run ``call`` against the tools, never raising for anything the tool does.

    - unknown tool, bad JSON, wrong argument types: an error output naming the problem,
      so the model can correct itself;
    - ``ToolError``: its message as an error output;
    - ``StopResponse``: no output, ``stop_response`` set;
    - a retryable ``APIError`` with ``auto_retry``: the call is run once more;
    - any other exception: logged with its traceback, the model sees only
      ``"An internal error occurred"`` (internals stay out of the conversation).
    """
    tools = tool_ctx if isinstance(tool_ctx, ToolContext) else ToolContext(tool_ctx)
    tool = tools.get(call.name)
    if tool is None:
        return _error(call, f"Unknown function {call.name!r}; available: {sorted(tools.function_tools)}")
    try:
        kwargs = _arguments(tool, call, run_context)
    except ToolArgumentError as exc:
        return _error(call, f"Invalid arguments for {call.name}: {exc}", exc)
    except RuntimeError as exc:
        logger.error("cannot run tool %s: %s", call.name, exc)
        return _error(call, INTERNAL_ERROR_OUTPUT, exc)

    attempts = 2 if tool.auto_retry else 1
    for attempt in range(attempts):
        try:
            value = await _invoke(tool, kwargs)
        except ToolError as exc:
            return _error(call, exc.message, exc)
        except StopResponse as exc:
            return ToolExecution(call=call, output=None, exception=exc)
        except APIError as exc:
            if exc.retryable and attempt + 1 < attempts:
                logger.warning("tool %s failed (%s), retrying once", call.name, exc)
                continue
            logger.error("tool %s failed: %s", call.name, exc, exc_info=exc)
            return _error(call, INTERNAL_ERROR_OUTPUT, exc)
        except Exception as exc:
            logger.error("tool %s raised", call.name, exc_info=exc)
            return _error(call, INTERNAL_ERROR_OUTPUT, exc)
        return ToolExecution(
            call=call,
            output=FunctionCallOutput(call_id=call.call_id, name=call.name, output=output_text(value)),
            raw_output=value,
        )
    raise AssertionError("unreachable")  # the loop always returns


__all__ = ["INTERNAL_ERROR_OUTPUT", "ToolExecution", "execute_function_call", "output_text"]
