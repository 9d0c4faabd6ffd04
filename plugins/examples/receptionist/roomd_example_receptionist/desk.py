"""What the receptionist knows and can do, apart from any session: instructions, the
opening-hours table and the two tools. Kept free of the voice machinery so it can be
tested (and reused) on its own."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files

from roomd.agents.llm import ToolError, function_tool

INSTRUCTIONS = (
    "You are the receptionist of the town hall. You greet visitors and answer their "
    "questions in one or two short sentences. Be friendly."
)
GREETING = "Hello, welcome to the town hall. How can I help you?"

# Example requests per tool (with the arguments the call should get): the small local
# model picks tools, and fills their arguments, by analogy with them.
TOOL_EXAMPLES: dict[str, list[str | tuple[str, dict[str, str]]]] = {
    "get_current_time": ["What's the time now?"],
    "lookup_opening_hours": [("When does the museum close?", {"place": "museum"})],
}


@dataclass(frozen=True, slots=True)
class Place:
    key: str
    names: tuple[str, ...]
    hours: str


def load_places() -> list[Place]:
    text = files(__package__).joinpath("opening_hours.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text)
    return [Place(key=key, names=tuple(v["names"]), hours=str(v["hours"])) for key, v in table.items()]


def find_place(places: list[Place], query: str) -> Place | None:
    """The place whose name appears in ``query`` (longest name first), else None."""
    # (a model may write the place as an identifier: "town_hall")
    q = " ".join(query.lower().replace("?", " ").replace("_", " ").split())
    candidates = sorted(((name, p) for p in places for name in p.names), key=lambda np_: -len(np_[0]))
    for name, place in candidates:
        if name in q or q in name:
            return place
    return None


def make_tools(now: Callable[[], dt.datetime] = dt.datetime.now) -> list:  # type: ignore[type-arg]
    places = load_places()

    @function_tool
    async def get_current_time() -> str:
        """Get the current time of day."""
        return f"The current time is {now():%H:%M}."

    @function_tool
    async def lookup_opening_hours(place: str) -> str:
        """Look up the opening hours of a place.

        Args:
            place: the place, for example the library, the swimming pool or the museum
        """
        found = find_place(places, place)
        if found is None:
            known = ", ".join(p.key for p in places)
            raise ToolError(f"no opening hours for {place!r}; known places: {known}")
        return found.hours

    return [get_current_time, lookup_opening_hours]
