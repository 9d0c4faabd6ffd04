"""JSON schema for a tool's parameters from its signature, type hints and docstring,
and the reverse: checking and coercing the model's JSON arguments to those types."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from .run_context import RunContext

_NoneType = type(None)


class ToolSchemaError(TypeError):
    """A tool's signature cannot be described as a JSON schema."""


class ToolArgumentError(ValueError):
    """The model's arguments do not fit the tool's parameters."""


@dataclass(frozen=True, slots=True)
class ToolParameter:
    name: str
    annotation: Any
    required: bool
    default: Any
    is_context: bool  # injected RunContext, not part of the schema


@dataclass(frozen=True, slots=True)
class ParsedDocstring:
    description: str
    params: Mapping[str, str]


# -- docstrings -------------------------------------------------------------------------

_GOOGLE_SECTIONS = re.compile(
    r"^(Args|Arguments|Parameters|Params|Returns?|Raises|Yields?|Examples?|Notes?|Attributes):\s*$"
)
_GOOGLE_ARGS = {"Args", "Arguments", "Parameters", "Params"}
_GOOGLE_PARAM = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_FIELD = re.compile(r"^:(param|parameter|arg|argument|type|returns?|rtype|raises?)\b\s*([^:]*):\s*(.*)$")


def parse_docstring(doc: str | None) -> ParsedDocstring:
    """Summary and per-parameter descriptions from a Google- or Sphinx-style docstring."""
    if not doc:
        return ParsedDocstring("", {})
    description: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    current: str | None = None  # the parameter whose description may continue
    current_indent = 0
    for raw in inspect.cleandoc(doc).splitlines():
        line = raw.strip()
        indent = len(raw) - len(raw.lstrip())
        if sphinx := _SPHINX_FIELD.match(line):
            section, current = "sphinx", None
            kind, name, text = sphinx.groups()
            if kind in ("param", "parameter", "arg", "argument") and name.split():
                current, current_indent = name.split()[-1], indent
                params[current] = text.strip()
            continue
        if google := _GOOGLE_SECTIONS.match(line):
            section, current = google.group(1), None
            continue
        if section is None:
            description.append(raw)
            continue
        if not line:
            continue
        if section in _GOOGLE_ARGS and indent > 0 and (current is None or indent <= current_indent):
            if match := _GOOGLE_PARAM.match(line):
                current, current_indent = match.group(1).lstrip("*"), indent
                params[current] = match.group(3).strip()
                continue
        if current is not None and indent > current_indent:
            params[current] = f"{params[current]} {line}".strip()
    return ParsedDocstring("\n".join(description).strip(), params)


# -- signature --------------------------------------------------------------------------


def is_run_context(annotation: Any) -> bool:
    target = get_origin(annotation) or annotation
    if get_origin(annotation) is typing.Annotated:
        return is_run_context(get_args(annotation)[0])
    return isinstance(target, type) and issubclass(target, RunContext)


def tool_parameters(fn: Callable[..., Any], *, tool_name: str) -> list[ToolParameter]:
    """The parameters the model fills in, and which one gets the RunContext.

    A leading ``self``/``cls`` is skipped so that a decorated method can be described
    before it is bound.
    """
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ToolSchemaError(f"tool {tool_name!r}: cannot resolve type hints: {exc}") from exc
    params: list[ToolParameter] = []
    signature = inspect.signature(fn)
    for index, param in enumerate(signature.parameters.values()):
        if index == 0 and param.name in ("self", "cls"):
            continue
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise ToolSchemaError(f"tool {tool_name!r}: *args/**kwargs ({param.name}) cannot be described")
        if param.name not in hints:
            raise ToolSchemaError(f"tool {tool_name!r}: parameter {param.name!r} needs a type hint")
        annotation = hints[param.name]
        params.append(
            ToolParameter(
                name=param.name,
                annotation=annotation,
                required=param.default is inspect.Parameter.empty,
                default=None if param.default is inspect.Parameter.empty else param.default,
                is_context=is_run_context(annotation),
            )
        )
    return params


def parameters_schema(
    params: list[ToolParameter], docs: Mapping[str, str], *, tool_name: str
) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in params:
        if param.is_context:
            continue
        try:
            schema = type_schema(param.annotation)
        except ToolSchemaError as exc:
            raise ToolSchemaError(f"tool {tool_name!r}, parameter {param.name!r}: {exc}") from exc
        if param.name in docs and "description" not in schema:
            schema["description"] = docs[param.name]
        if not param.required and _json_safe(param.default):
            schema["default"] = _default_value(param.default)
        properties[param.name] = schema
        if param.required:
            required.append(param.name)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _default_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _json_safe(value: Any) -> bool:
    value = _default_value(value)
    return value is None or isinstance(value, (str, int, float, bool))


# -- types to schema ---------------------------------------------------------------------

_SCALARS: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}


def type_schema(tp: Any) -> dict[str, Any]:
    """The JSON schema of one type hint."""
    origin = get_origin(tp)
    if origin is typing.Annotated:
        base, *extras = get_args(tp)
        schema = type_schema(base)
        for extra in extras:
            description = extra if isinstance(extra, str) else getattr(extra, "description", None)
            if isinstance(description, str):
                schema["description"] = description
        return schema
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    if tp is Any:
        return {}
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not _NoneType]
        nullable = len(members) < len(get_args(tp))
        inner = type_schema(members[0]) if len(members) == 1 else {"anyOf": [type_schema(m) for m in members]}
        if not nullable:
            return inner
        if isinstance(inner.get("type"), str) and "enum" not in inner:
            return {**inner, "type": [inner["type"], "null"]}
        return {"anyOf": [inner, {"type": "null"}]}
    if origin is Literal:
        values = list(get_args(tp))
        return {**_enum_type(values), "enum": values}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [m.value for m in tp]
        return {**_enum_type(values), "enum": values}
    if origin in (list, tuple, set, frozenset, typing.Sequence, typing.MutableSequence) or tp in (list, set):
        args = get_args(tp)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise ToolSchemaError(f"fixed-length tuples are not supported ({tp!r}); use list[...]")
        return {"type": "array", "items": type_schema(args[0]) if args else {}}
    if origin in (dict, typing.Mapping) or tp is dict:
        args = get_args(tp)
        if args and args[0] is not str:
            raise ToolSchemaError(f"object keys must be str, got {tp!r}")
        return {"type": "object", "additionalProperties": type_schema(args[1]) if args else {}}
    if _is_typeddict(tp):
        return _typeddict_schema(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_schema(tp)
    if _is_pydantic_model(tp):
        return _pydantic_schema(tp)
    raise ToolSchemaError(f"unsupported type {tp!r}")


def _is_typeddict(tp: Any) -> bool:
    # typing_extensions.TypedDict (what pydantic asks for before Python 3.12) makes classes
    # that typing.is_typeddict does not recognise; both carry the same class attributes.
    return typing.is_typeddict(tp) or (isinstance(tp, type) and issubclass(tp, dict)
                                       and hasattr(tp, "__required_keys__") and hasattr(tp, "__total__"))


def _is_pydantic_model(tp: Any) -> bool:
    # duck-typed: pydantic is the agent's dependency, not roomd's
    return isinstance(tp, type) and hasattr(tp, "model_fields") and hasattr(tp, "model_validate")


def _pydantic_schema(tp: Any) -> dict[str, Any]:
    properties = {}
    required = []
    for name, info in tp.model_fields.items():
        schema = type_schema(info.annotation)
        if info.description:
            schema["description"] = info.description
        properties[info.alias or name] = schema
        if info.is_required():
            required.append(info.alias or name)
    schema = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    if tp.__doc__ and not tp.__doc__.startswith("!!!"):
        description = parse_docstring(tp.__doc__).description
        if description:
            schema["description"] = description
    return schema


def _enum_type(values: list[Any]) -> dict[str, Any]:
    kinds = {_SCALARS.get(type(v)) for v in values}
    if len(kinds) == 1 and None not in kinds:
        return {"type": kinds.pop()}
    return {}


def _typeddict_schema(tp: type) -> dict[str, Any]:
    hints = typing.get_type_hints(tp, include_extras=True)
    docs = parse_docstring(tp.__doc__).params
    properties = {}
    for name, hint in hints.items():
        schema = type_schema(hint)
        if name in docs and "description" not in schema:
            schema["description"] = docs[name]
        properties[name] = schema
    required = [n for n in hints if n in getattr(tp, "__required_keys__", hints)]
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _dataclass_schema(tp: type) -> dict[str, Any]:
    hints = typing.get_type_hints(tp, include_extras=True)
    parsed = parse_docstring(tp.__doc__)
    docs = parsed.params
    properties = {}
    required = []
    for f in dataclasses.fields(tp):
        if not f.init:
            continue
        schema = type_schema(hints[f.name])
        if f.name in docs and "description" not in schema:
            schema["description"] = docs[f.name]
        properties[f.name] = schema
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    # dataclass() gives every class a generated docstring "Name(field: type, ...)"
    if parsed.description and not parsed.description.startswith(f"{tp.__name__}("):
        schema["description"] = parsed.description
    return schema


# -- coercing arguments ------------------------------------------------------------------


def coerce(value: Any, tp: Any, path: str) -> Any:
    """``value`` (decoded JSON) as a ``tp``; lenient where models commonly slip
    (numbers as strings, integral floats), strict elsewhere."""
    origin = get_origin(tp)
    if origin is typing.Annotated:
        return coerce(value, get_args(tp)[0], path)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and _NoneType in args:
            return None
        errors = []
        for member in (a for a in args if a is not _NoneType):
            try:
                return coerce(value, member, path)
            except ToolArgumentError as exc:
                errors.append(str(exc))
        raise ToolArgumentError("; ".join(errors) or f"{path}: null is not allowed")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ToolArgumentError(f"{path}: expected a boolean, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ToolArgumentError(f"{path}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ToolArgumentError(f"{path}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ToolArgumentError(f"{path}: expected a string, got {value!r}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ToolArgumentError(f"{path}: expected one of {list(get_args(tp))}, got {value!r}")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise ToolArgumentError(
                f"{path}: expected one of {[m.value for m in tp]}, got {value!r}"
            ) from None
    if origin in (list, tuple, set, frozenset, typing.Sequence, typing.MutableSequence) or tp in (list, set):
        if not isinstance(value, list):
            raise ToolArgumentError(f"{path}: expected an array, got {value!r}")
        args = get_args(tp)
        items = [coerce(v, args[0], f"{path}[{i}]") if args else v for i, v in enumerate(value)]
        container = origin if origin in (list, tuple, set, frozenset) else (tp if isinstance(tp, type) else list)
        return container(items)
    if origin in (dict, typing.Mapping) or tp is dict:
        if not isinstance(value, dict):
            raise ToolArgumentError(f"{path}: expected an object, got {value!r}")
        args = get_args(tp)
        return {k: coerce(v, args[1], f"{path}.{k}") if args else v for k, v in value.items()}
    if _is_typeddict(tp):
        return _coerce_fields(value, typing.get_type_hints(tp, include_extras=True),
                              set(getattr(tp, "__required_keys__", ())), path)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp, include_extras=True)
        fields = {f.name: hints[f.name] for f in dataclasses.fields(tp) if f.init}
        needed = {
            f.name
            for f in dataclasses.fields(tp)
            if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        return tp(**_coerce_fields(value, fields, needed, path))
    if _is_pydantic_model(tp):
        if not isinstance(value, dict):
            raise ToolArgumentError(f"{path}: expected an object, got {value!r}")
        try:
            return tp.model_validate(value)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise ToolArgumentError(f"{path}: {exc}") from None
    raise ToolArgumentError(f"{path}: unsupported type {tp!r}")


def _coerce_fields(value: Any, fields: Mapping[str, Any], required: set[str], path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ToolArgumentError(f"{path}: expected an object, got {value!r}")
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ToolArgumentError(f"{path}: unknown field(s) {unknown}")
    missing = sorted(required - set(value))
    if missing:
        raise ToolArgumentError(f"{path}: missing field(s) {missing}")
    return {k: coerce(v, fields[k], f"{path}.{k}") for k, v in value.items()}
