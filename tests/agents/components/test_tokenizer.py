import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from roomd.agents.tokenize import SentenceTokenizer, split_words


def test_sentences_respect_abbreviations_numbers_and_initials() -> None:
    tokenizer = SentenceTokenizer(min_sentence_len=1)
    text = "Dr. Smith paid $3.14 at example.com today. J. R. R. Tolkien wrote it! Really? Yes… ok.\n\nNew part"
    assert tokenizer.tokenize(text) == [
        "Dr. Smith paid $3.14 at example.com today.",
        "J. R. R. Tolkien wrote it!",
        "Really?",
        "Yes…",
        "ok.",
        "New part",
    ]


def test_short_sentences_are_joined_to_the_next() -> None:
    tokenizer = SentenceTokenizer(min_sentence_len=20)
    assert tokenizer.tokenize("Yes. No. This one is long enough. Ok.") == [
        "Yes. No. This one is long enough.",
        "Ok.",
    ]


async def collect_stream(tokenizer: SentenceTokenizer, chunks: list[str]) -> list[str]:
    stream = tokenizer.stream()
    for chunk in chunks:
        stream.push_text(chunk)
    stream.end_input()
    async with asyncio.timeout(5):
        return [token.token async for token in stream]


async def test_stream_emits_sentences_once_they_are_complete() -> None:
    tokenizer = SentenceTokenizer(min_sentence_len=10)
    stream = tokenizer.stream()
    stream.push_text("Hello there Dr")
    stream.push_text(". Smith, how are you? I am")
    async with asyncio.timeout(5):
        first = await stream.__anext__()
    assert first.token == "Hello there Dr. Smith, how are you?"
    stream.push_text(" fine.")
    stream.end_input()
    async with asyncio.timeout(5):
        assert [t.token async for t in stream] == ["I am fine."]


def test_split_words() -> None:
    assert split_words("Hello, world!  It's 3.5 — ok?") == ["Hello", "world", "It's", "3.5", "—", "ok"]


text_strategy = st.lists(
    st.sampled_from(list("abcdefghij ABC.!?…,'\"\n0123456789") + ["Dr.", "e.g.", " J. "]),
    max_size=80,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text_strategy, st.integers(0, 40))
def test_tokenize_never_loses_text(text: str, min_len: int) -> None:
    tokens = SentenceTokenizer(min_sentence_len=min_len).tokenize(text)
    assert " ".join(tokens).split() == text.split()
    assert all(t and t == t.strip() for t in tokens)


@settings(max_examples=200, deadline=None)
@given(text_strategy, st.lists(st.integers(1, 15), max_size=20), st.integers(0, 30))
def test_streaming_never_loses_text(text: str, cuts: list[int], min_len: int) -> None:
    chunks, position = [], 0
    for size in cuts:
        chunks.append(text[position : position + size])
        position += size
    chunks.append(text[position:])
    tokens = asyncio.run(collect_stream(SentenceTokenizer(min_sentence_len=min_len), chunks))
    assert " ".join(tokens).split() == text.split()
