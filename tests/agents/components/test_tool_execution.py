import json
from dataclasses import dataclass
from typing import Literal

from roomd.agents.errors import APIConnectionError, APIStatusError, StopResponse, ToolError
from roomd.agents.llm import (
    INTERNAL_ERROR_OUTPUT,
    FunctionCall,
    RunContext,
    ToolContext,
    execute_function_call,
    function_tool,
)


@dataclass
class Item:
    name: str
    count: int = 1


class Session:
    userdata = {"user": "ada"}


def call(name: str, **arguments: object) -> FunctionCall:
    return FunctionCall(call_id=f"call_{name}", name=name, arguments=json.dumps(arguments))


def run_ctx(fc: FunctionCall) -> RunContext:
    return RunContext(session=Session(), speech_handle=None, function_call=fc)


async def test_arguments_are_coerced_to_the_declared_types() -> None:
    seen = {}

    @function_tool
    async def order(items: list[Item], when: Literal["now", "later"], discount: float, gift: bool = False) -> str:
        seen.update(items=items, when=when, discount=discount, gift=gift)
        return "ok"

    fc = FunctionCall(
        call_id="c1",
        name="order",
        arguments='{"items": [{"name": "tea", "count": "2"}], "when": "now", "discount": 5, "gift": "true"}',
    )
    result = await execute_function_call([order], fc)
    assert result.output is not None and not result.output.is_error
    assert result.output.output == "ok" and result.output.call_id == "c1" and result.output.name == "order"
    assert seen == {"items": [Item("tea", 2)], "when": "now", "discount": 5.0, "gift": True}


async def test_bad_arguments_become_error_outputs_naming_the_problem() -> None:
    @function_tool
    async def f(n: int, mode: Literal["a", "b"] = "a") -> str:
        return "never"

    cases = {
        '{"n": "many"}': "expected an integer",
        '{"n": 1, "mode": "c"}': "expected one of",
        "{}": "missing required argument 'n'",
        '{"n": 1, "extra": 2}': "unknown argument(s) ['extra']",
        "not json": "not valid JSON",
        "[1]": "must be a JSON object",
    }
    for arguments, message in cases.items():
        result = await execute_function_call([f], FunctionCall(call_id="c", name="f", arguments=arguments))
        assert result.output is not None and result.output.is_error
        assert message in result.output.output, (arguments, result.output.output)


async def test_unknown_tool_is_an_error_output_listing_tools() -> None:
    @function_tool
    async def known() -> None: ...

    result = await execute_function_call(ToolContext([known]), call("nope"))
    assert result.output is not None and result.output.is_error
    assert "'nope'" in result.output.output and "known" in result.output.output


async def test_run_context_is_injected_with_userdata() -> None:
    @function_tool
    async def whoami(context: RunContext[dict], greeting: str) -> str:
        return f"{greeting} {context.userdata['user']} ({context.function_call.call_id})"

    fc = call("whoami", greeting="hi")
    result = await execute_function_call([whoami], fc, run_ctx(fc))
    assert result.output is not None and result.output.output == "hi ada (call_whoami)"


async def test_tool_error_message_goes_to_the_llm_as_error() -> None:
    @function_tool
    async def f() -> str:
        raise ToolError("the city is unknown")

    result = await execute_function_call([f], call("f"))
    assert result.output is not None
    assert (result.output.output, result.output.is_error) == ("the city is unknown", True)
    assert isinstance(result.exception, ToolError)


async def test_stop_response_means_no_output_and_no_reply() -> None:
    @function_tool
    async def f() -> str:
        raise StopResponse()

    result = await execute_function_call([f], call("f"))
    assert result.output is None and result.stop_response


async def test_unexpected_exception_is_hidden_behind_internal_error() -> None:
    @function_tool
    def f() -> str:
        raise KeyError("secret internals")

    result = await execute_function_call([f], call("f"))
    assert result.output is not None and result.output.is_error
    assert result.output.output == INTERNAL_ERROR_OUTPUT
    assert isinstance(result.exception, KeyError)


async def test_auto_retry_reruns_once_on_retryable_api_error() -> None:
    attempts = []

    @function_tool
    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise APIConnectionError("reset")
        return "second time lucky"

    result = await execute_function_call([flaky], call("flaky"))
    assert result.output is not None and result.output.output == "second time lucky"
    assert len(attempts) == 2


async def test_no_retry_without_auto_retry_or_for_non_retryable_errors() -> None:
    attempts = []

    @function_tool(auto_retry=False)
    async def once() -> str:
        attempts.append("once")
        raise APIConnectionError("reset")

    @function_tool
    async def bad_request() -> str:
        attempts.append("bad")
        raise APIStatusError("bad request", status_code=400)

    for tool in (once, bad_request):
        result = await execute_function_call([tool], call(tool.name))
        assert result.output is not None and result.output.is_error
    assert attempts == ["once", "bad"]


async def test_return_values_become_json_or_text_and_raw_is_kept() -> None:
    class Handoff:
        def __str__(self) -> str:
            return "<another agent>"

    target = Handoff()

    @function_tool
    async def data() -> dict:
        return {"temp": 21, "sky": "clear"}

    @function_tool
    async def nothing() -> None:
        return None

    @function_tool
    async def handoff() -> object:
        return target

    assert (await execute_function_call([data], call("data"))).output.output == '{"temp": 21, "sky": "clear"}'  # type: ignore[union-attr]
    assert (await execute_function_call([nothing], call("nothing"))).output.output == ""  # type: ignore[union-attr]
    result = await execute_function_call([handoff], call("handoff"))
    assert result.raw_output is target
    assert result.output is not None and result.output.output == "<another agent>"


async def test_raw_tool_receives_raw_arguments_and_context() -> None:
    @function_tool(raw_schema={"name": "echo", "parameters": {"type": "object"}})
    async def echo(raw_arguments: dict[str, object], context: RunContext) -> str:
        return f"{raw_arguments['x']} for {context.userdata['user']}"

    fc = call("echo", x=1)
    result = await execute_function_call([echo], fc, run_ctx(fc))
    assert result.output is not None and result.output.output == "1 for ada"


async def test_missing_run_context_is_an_internal_error_not_a_crash() -> None:
    @function_tool
    async def needs(context: RunContext) -> str:
        return "x"

    result = await execute_function_call([needs], call("needs"))
    assert result.output is not None and result.output.output == INTERNAL_ERROR_OUTPUT
    assert isinstance(result.exception, RuntimeError)
