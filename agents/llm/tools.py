"""Function tools: callables the LLM may call, described by a JSON schema."""

from __future__ import annotations

import copy
import inspect
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias, overload

from .tool_schema import (
    ToolParameter,
    ToolSchemaError,
    is_run_context,
    parameters_schema,
    parse_docstring,
    tool_parameters,
)

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class FunctionToolInfo:
    name: str
    description: str
    parameters: dict[str, Any]
    auto_retry: bool


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ToolSchemaError(f"tool name {name!r} must match {_NAME.pattern} (what LLM APIs accept)")
    return name


class _BindableTool:
    """Shared by both tool kinds: binds to an instance like a method does."""

    _fn: Callable[..., Any]
    _instance: Any = None

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        bound = copy.copy(self)
        bound._instance = instance
        return bound

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._instance is not None:
            return self._fn(self._instance, *args, **kwargs)
        return self._fn(*args, **kwargs)

    @property
    def fn(self) -> Callable[..., Any]:
        return self._fn

    @property
    def bound_to(self) -> Any:
        return self._instance


class FunctionTool(_BindableTool):
    """A tool whose schema comes from the function's signature and docstring.

    Made by ``@function_tool``; calling it calls the function. Decorated methods bind to
    their instance like methods (``agent.lookup`` is a bound ``FunctionTool``).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        auto_retry: bool = True,
    ) -> None:
        self._fn = fn
        self._instance = None
        tool_name = _check_name(name or fn.__name__)
        docs = parse_docstring(fn.__doc__)
        self._params = tool_parameters(fn, tool_name=tool_name)
        self._info = FunctionToolInfo(
            name=tool_name,
            description=description if description is not None else docs.description,
            parameters=parameters_schema(self._params, docs.params, tool_name=tool_name),
            auto_retry=auto_retry,
        )
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", tool_name)
        self.__qualname__ = getattr(fn, "__qualname__", tool_name)
        self.__wrapped__ = fn

    @property
    def info(self) -> FunctionToolInfo:
        return self._info

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def description(self) -> str:
        return self._info.description

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments (an ``object`` schema)."""
        return self._info.parameters

    @property
    def auto_retry(self) -> bool:
        return self._info.auto_retry

    @property
    def tool_parameters(self) -> list[ToolParameter]:
        return list(self._params)

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def __repr__(self) -> str:
        bound = f" bound to {type(self._instance).__name__}" if self._instance is not None else ""
        return f"<FunctionTool {self.name}{bound}>"


class RawFunctionTool(_BindableTool):
    """A tool whose schema is given as a dict: ``{"name", "description", "parameters"}``.

    The function receives the decoded arguments unchecked as ``raw_arguments`` (and a
    ``RunContext`` if it has a parameter annotated so).
    """

    def __init__(self, fn: Callable[..., Any], *, raw_schema: Mapping[str, Any], auto_retry: bool = True) -> None:
        self._fn = fn
        self._instance = None
        if "name" not in raw_schema:
            raise ToolSchemaError("raw_schema needs a 'name'")
        _check_name(str(raw_schema["name"]))
        params = inspect.signature(fn).parameters
        if "raw_arguments" not in params:
            raise ToolSchemaError(
                f"raw tool {raw_schema['name']!r}: the function needs a 'raw_arguments' parameter"
            )
        self._raw_schema = dict(raw_schema)
        self._auto_retry = auto_retry
        try:
            hints = typing.get_type_hints(fn)
        except Exception as exc:
            raise ToolSchemaError(f"raw tool {raw_schema['name']!r}: cannot resolve type hints: {exc}") from exc
        self._context_param = next((n for n, h in hints.items() if is_run_context(h)), None)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", raw_schema["name"])
        self.__wrapped__ = fn

    @property
    def raw_schema(self) -> dict[str, Any]:
        return dict(self._raw_schema)

    @property
    def name(self) -> str:
        return str(self._raw_schema["name"])

    @property
    def description(self) -> str:
        return str(self._raw_schema.get("description", ""))

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self._raw_schema.get("parameters") or {"type": "object", "properties": {}})

    @property
    def auto_retry(self) -> bool:
        return self._auto_retry

    @property
    def context_parameter(self) -> str | None:
        return self._context_param

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def __repr__(self) -> str:
        return f"<RawFunctionTool {self.name}>"


Tool: TypeAlias = FunctionTool | RawFunctionTool


@overload
def function_tool(fn: Callable[..., Any], /) -> FunctionTool: ...


@overload
def function_tool(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    auto_retry: bool = True,
    raw_schema: None = None,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


@overload
def function_tool(
    fn: None = None,
    /,
    *,
    raw_schema: Mapping[str, Any],
    auto_retry: bool = True,
) -> Callable[[Callable[..., Any]], RawFunctionTool]: ...


def function_tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    auto_retry: bool = True,
    raw_schema: Mapping[str, Any] | None = None,
) -> Any:
    """Turn a function (or method) into a tool; usable bare or with arguments."""

    def decorate(func: Callable[..., Any]) -> Tool:
        if raw_schema is not None:
            if name is not None or description is not None:
                raise TypeError("with raw_schema, give name and description inside the schema")
            return RawFunctionTool(func, raw_schema=raw_schema, auto_retry=auto_retry)
        return FunctionTool(func, name=name, description=description, auto_retry=auto_retry)

    return decorate if fn is None else decorate(fn)


def is_function_tool(obj: Any) -> bool:
    return isinstance(obj, FunctionTool)


def is_raw_function_tool(obj: Any) -> bool:
    return isinstance(obj, RawFunctionTool)


def find_function_tools(obj: Any) -> list[Tool]:
    """The tools defined as decorated methods on ``obj``'s class (and its bases), bound.

    A subclass's method overrides a base's of the same attribute name; base tools come
    first, in definition order.
    """
    names: dict[str, None] = {}
    for cls in reversed(type(obj).__mro__):
        for attr, value in vars(cls).items():
            if isinstance(value, (FunctionTool, RawFunctionTool)):
                names[attr] = None
            elif attr in names:
                del names[attr]  # overridden by something that is not a tool
    return [getattr(obj, attr) for attr in names]


class ToolContext:
    """The tools available to one LLM call, by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if not isinstance(tool, (FunctionTool, RawFunctionTool)):
                raise TypeError(f"not a tool: {tool!r} (decorate it with @function_tool)")
            if tool.name in self._tools and self._tools[tool.name] is not tool:
                raise ValueError(f"duplicate tool name {tool.name!r}")
            self._tools[tool.name] = tool

    @classmethod
    def empty(cls) -> ToolContext:
        return cls()

    @property
    def function_tools(self) -> dict[str, Tool]:
        return dict(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def flatten(self) -> list[Tool]:
        return list(self._tools.values())

    def openai_tools(self) -> list[dict[str, Any]]:
        return [tool.openai_schema() for tool in self._tools.values()]

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools
