import enum
from dataclasses import dataclass, field
from typing import Annotated, Literal, Optional, TypedDict

import pytest

from roomd.agents.llm import (
    FunctionTool,
    RawFunctionTool,
    RunContext,
    ToolSchemaError,
    find_function_tools,
    function_tool,
    parse_docstring,
)


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Address(TypedDict):
    street: str
    city: Annotated[str, "the city name"]


class PartialAddress(TypedDict, total=False):
    zip: str


@dataclass
class Order:
    """An order.

    Args:
        item: what to buy
    """

    item: str
    quantity: int = 1
    notes: list[str] = field(default_factory=list)


class Described:
    """Like pydantic's Field: anything with a ``description`` attribute."""

    def __init__(self, description: str) -> None:
        self.description = description


def props(tool: FunctionTool) -> dict:
    return tool.parameters["properties"]


def test_bare_decorator_uses_function_name_and_docstring_summary() -> None:
    @function_tool
    async def get_weather(location: str) -> str:
        """Get the weather for a place.

        Args:
            location: where
        """
        return "sunny"

    assert isinstance(get_weather, FunctionTool)
    assert get_weather.name == "get_weather"
    assert get_weather.description == "Get the weather for a place."
    assert get_weather.auto_retry is True
    assert get_weather.parameters == {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "where"}},
        "required": ["location"],
        "additionalProperties": False,
    }


def test_decorator_arguments_override_name_description_and_retry() -> None:
    @function_tool(name="weather_api", description="Weather lookup", auto_retry=False)
    def get_weather(location: str) -> str:
        """Ignored."""
        return "sunny"

    assert (get_weather.name, get_weather.description, get_weather.auto_retry) == (
        "weather_api",
        "Weather lookup",
        False,
    )
    assert get_weather.openai_schema()["function"]["name"] == "weather_api"


def test_scalars_map_to_json_types() -> None:
    @function_tool
    def f(a: str, b: int, c: float, d: bool) -> None: ...

    assert {k: v["type"] for k, v in props(f).items()} == {
        "a": "string",
        "b": "integer",
        "c": "number",
        "d": "boolean",
    }


def test_optional_is_nullable_and_defaults_are_not_required() -> None:
    @function_tool
    def f(a: Optional[int], b: str | None = None, c: int = 3) -> None: ...

    assert props(f)["a"] == {"type": ["integer", "null"]}
    assert props(f)["b"] == {"type": ["string", "null"], "default": None}
    assert props(f)["c"] == {"type": "integer", "default": 3}
    assert f.parameters["required"] == ["a"]


def test_literal_and_enum_become_enums() -> None:
    @function_tool
    def f(mode: Literal["fast", "slow"], unit: Unit = Unit.CELSIUS, n: Literal[1, 2] = 1) -> None: ...

    assert props(f)["mode"] == {"type": "string", "enum": ["fast", "slow"]}
    assert props(f)["unit"] == {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"}
    assert props(f)["n"] == {"type": "integer", "enum": [1, 2], "default": 1}


def test_lists_and_dicts() -> None:
    @function_tool
    def f(tags: list[str], scores: dict[str, float], units: list[Unit]) -> None: ...

    assert props(f)["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props(f)["scores"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert props(f)["units"]["items"]["enum"] == ["celsius", "fahrenheit"]


def test_typeddict_and_dataclass_become_objects() -> None:
    @function_tool
    def f(address: Address, extra: PartialAddress, order: Order) -> None: ...

    assert props(f)["address"] == {
        "type": "object",
        "properties": {"street": {"type": "string"}, "city": {"type": "string", "description": "the city name"}},
        "required": ["street", "city"],
        "additionalProperties": False,
    }
    assert props(f)["extra"]["required"] == []
    order = props(f)["order"]
    assert order["required"] == ["item"]
    assert order["properties"]["item"] == {"type": "string", "description": "what to buy"}
    assert order["properties"]["notes"] == {"type": "array", "items": {"type": "string"}}
    assert order["description"] == "An order."


def test_annotated_descriptions_win_over_docstring() -> None:
    @function_tool
    def f(a: Annotated[str, "from annotation"], b: Annotated[int, Described("field-like")], c: str) -> None:
        """Do it.

        :param a: from docstring
        :param c: sphinx style
            continued here
        :returns: nothing
        """

    assert props(f)["a"]["description"] == "from annotation"
    assert props(f)["b"]["description"] == "field-like"
    assert props(f)["c"]["description"] == "sphinx style continued here"
    assert f.description == "Do it."


def test_google_docstring_with_types_and_continuations() -> None:
    parsed = parse_docstring(
        """Book a table.

        Longer explanation.

        Args:
            name (str): who books
            size: how many
                people come
            **kwargs: ignored

        Returns:
            str: a confirmation
        """
    )
    assert parsed.description == "Book a table.\n\nLonger explanation."
    assert parsed.params == {"name": "who books", "size": "how many people come", "kwargs": "ignored"}


def test_run_context_parameter_is_injected_not_described() -> None:
    @function_tool
    async def f(context: RunContext, city: str) -> str:
        return city

    @function_tool
    async def g(ctx: RunContext[dict], city: str) -> str:
        return city

    for tool in (f, g):
        assert list(props(tool)) == ["city"]
        assert [p.name for p in tool.tool_parameters if p.is_context] in (["context"], ["ctx"])


def test_methods_are_discovered_and_bound() -> None:
    class Base:
        @function_tool
        async def hello(self, name: str) -> str:
            return f"hello {name} from {self.who}"

        @function_tool
        async def replaced(self) -> str:
            return "base"

    class Child(Base):
        who = "child"

        @function_tool
        async def bye(self) -> str:
            """Say bye."""
            return "bye"

        replaced = None  # type: ignore[assignment]

    child = Child()
    tools = find_function_tools(child)
    assert [t.name for t in tools] == ["hello", "bye"]
    assert all(t.bound_to is child for t in tools)
    assert "self" not in props(tools[0])


async def test_bound_method_tool_calls_with_instance() -> None:
    class Agent:
        who = "me"

        @function_tool
        async def hello(self, name: str) -> str:
            return f"hello {name} from {self.who}"

    assert await Agent().hello("you") == "hello you from me"
    assert isinstance(Agent.__dict__["hello"], FunctionTool)


def test_raw_function_tool_keeps_given_schema() -> None:
    schema = {
        "name": "lookup",
        "description": "Look up",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    }

    @function_tool(raw_schema=schema)
    async def lookup(raw_arguments: dict[str, object], context: RunContext) -> str:
        return str(raw_arguments)

    assert isinstance(lookup, RawFunctionTool)
    assert lookup.name == "lookup"
    assert lookup.parameters == schema["parameters"]
    assert lookup.context_parameter == "context"


def test_unsupported_signatures_fail_clearly() -> None:
    with pytest.raises(ToolSchemaError, match="'x' needs a type hint"):
        function_tool(name="untyped")(lambda x: x)
    with pytest.raises(ToolSchemaError, match="unsupported type"):

        @function_tool
        def f(x: object) -> None: ...

    with pytest.raises(ToolSchemaError, match="must match"):
        function_tool(name="has space")(lambda: None)
    with pytest.raises(ToolSchemaError, match="raw_arguments"):
        function_tool(raw_schema={"name": "x"})(lambda y: y)
    with pytest.raises(ToolSchemaError, match="must match"):
        function_tool(lambda: None)
