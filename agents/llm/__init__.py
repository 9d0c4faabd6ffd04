"""LLM interface, chat context and function tools."""

from ..errors import StopResponse, ToolError
from .chat_context import (
    AudioContent,
    ChatContent,
    ChatContext,
    ChatItem,
    ChatMessage,
    ChatRole,
    FunctionCall,
    FunctionCallOutput,
    ImageContent,
)
from .execution import INTERNAL_ERROR_OUTPUT, ToolExecution, execute_function_call, output_text
from .fallback import AvailabilityChangedEvent, FallbackAdapter
from .llm import (
    LLM,
    ChatChunk,
    ChoiceDelta,
    CompletionUsage,
    FunctionToolCall,
    LLMError,
    LLMStream,
    ToolChoice,
)
from .metrics import LLMMetrics
from .run_context import RunContext
from .tool_schema import ToolArgumentError, ToolSchemaError, parse_docstring, type_schema
from .tools import (
    FunctionTool,
    FunctionToolInfo,
    RawFunctionTool,
    Tool,
    ToolContext,
    find_function_tools,
    function_tool,
    is_function_tool,
    is_raw_function_tool,
)

__all__ = [
    "AudioContent",
    "AvailabilityChangedEvent",
    "ChatChunk",
    "ChatContent",
    "ChatContext",
    "ChatItem",
    "ChatMessage",
    "ChatRole",
    "ChoiceDelta",
    "CompletionUsage",
    "FallbackAdapter",
    "FunctionCall",
    "FunctionCallOutput",
    "FunctionTool",
    "FunctionToolCall",
    "FunctionToolInfo",
    "INTERNAL_ERROR_OUTPUT",
    "ImageContent",
    "LLM",
    "LLMError",
    "LLMMetrics",
    "LLMStream",
    "RawFunctionTool",
    "RunContext",
    "StopResponse",
    "Tool",
    "ToolArgumentError",
    "ToolChoice",
    "ToolContext",
    "ToolError",
    "ToolExecution",
    "ToolSchemaError",
    "execute_function_call",
    "find_function_tools",
    "function_tool",
    "is_function_tool",
    "is_raw_function_tool",
    "output_text",
    "parse_docstring",
    "type_schema",
]
