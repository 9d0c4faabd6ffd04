"""What a running tool can see: the session, the speech it belongs to, its call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .chat_context import FunctionCall

Userdata_T = TypeVar("Userdata_T")


class RunContext(Generic[Userdata_T]):
    """Injected into a tool whose parameter is annotated ``RunContext`` (or ``RunContext[T]``).

    ``session`` is the ``AgentSession`` running the tool, ``speech_handle`` the speech
    whose LLM turn made the call; both are typed loosely here because they live in the
    voice package, which imports this one.
    """

    def __init__(self, *, session: Any, speech_handle: Any, function_call: FunctionCall) -> None:
        self._session = session
        self._speech_handle = speech_handle
        self._function_call = function_call

    @property
    def session(self) -> Any:
        return self._session

    @property
    def speech_handle(self) -> Any:
        return self._speech_handle

    @property
    def function_call(self) -> FunctionCall:
        return self._function_call

    @property
    def userdata(self) -> Userdata_T:
        return self._session.userdata  # type: ignore[no-any-return]

    def disallow_interruptions(self) -> None:
        """The speech that made this call can no longer be interrupted (e.g. a tool that
        must not be cut halfway through a booking)."""
        if self._speech_handle.interrupted:
            raise RuntimeError("the speech was already interrupted")
        self._speech_handle.allow_interruptions = False

    async def wait_for_playout(self) -> None:
        """Wait until what the LLM said before this call has been heard (not the whole
        speech: its next step waits for this tool)."""
        await self._speech_handle._wait_for_step()
