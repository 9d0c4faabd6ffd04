from importlib.metadata import entry_points

import pytest

from roomd.agents import components
from roomd.agents.llm import LLM
from roomd.agents.testing import EnergyVAD, FakeSTT, ScriptedLLM, ToneTTS


def test_testing_provider_is_installed_as_an_entry_point() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="roomd.components")}
    assert names["testing"] == "roomd.agents.testing:component_factory"
    assert "testing" in components.available()


def test_resolve_provider_model_names() -> None:
    llm = components.resolve("llm", "testing/scripted", replies=["hi"])
    assert isinstance(llm, ScriptedLLM) and isinstance(llm, LLM) and llm.remaining == 1
    assert isinstance(components.resolve("stt", "testing/fake", transcripts="x"), FakeSTT)
    assert isinstance(components.resolve("tts", "testing/tone", sample_rate=16000), ToneTTS)
    assert isinstance(components.resolve("vad", "testing"), EnergyVAD)


def test_unknown_provider_names_what_is_installed() -> None:
    with pytest.raises(components.UnknownComponentError) as info:
        components.resolve("llm", "acme/voice-9000")
    message = str(info.value)
    assert "'acme/voice-9000'" in message and "no provider 'acme'" in message
    assert "installed providers:" in message and "testing" in message


def test_unknown_model_of_a_known_provider_is_a_clear_error() -> None:
    with pytest.raises(components.ComponentError, match="no llm model 'gpt-5'.*scripted"):
        components.resolve("llm", "testing/gpt-5")


def test_wrong_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown component kind 'video'"):
        components.resolve("video", "testing")



def test_factory_failures_name_the_entry_point() -> None:
    with pytest.raises(components.ComponentError) as info:
        components.resolve("llm", "testing/scripted", tempreature=0.1)
    assert "testing = roomd.agents.testing:component_factory" in str(info.value)
    assert "tempreature" in str(info.value)
