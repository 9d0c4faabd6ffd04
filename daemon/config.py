"""roomd's configuration: one typed, immutable object.

Sources, lowest to highest precedence: built-in defaults < the TOML file
(``etc/roomd.toml`` documents every key) < environment (``LIVEKIT_URL``,
``LIVEKIT_API_KEY``, ``LIVEKIT_API_SECRET``, ``ROOMD_<SECTION>_<KEY>``) < command-line flags.
Every problem becomes one ``ConfigError`` line naming the file, key and (where known) line.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
# How often something repeats: below 50 ms a loop burns a core (status_interval = 1e-9
# once did), above an hour it never effectively runs.
Interval = Annotated[float, msgspec.Meta(ge=0.05, le=3600)]

SECRET_KEYS = frozenset({"api_secret"})
MASK = "********"


class ConfigError(ValueError):
    """Invalid configuration; the message is the one line shown to the operator."""


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class LiveKitConfig(_Section, frozen=True):
    url: str = ""
    api_key: str = ""
    api_secret: str = ""


class DaemonConfig(_Section, frozen=True):
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    dev: bool = False
    drain_timeout: NonNegativeFloat = 1800.0
    http_host: str = "127.0.0.1"
    http_port: Port = 8081
    # false: /readyz is ready while at least one plugin serves (a broken one shows in /status);
    # true: every enabled plugin must serve.
    require_all_plugins: bool = False


class HttpConfig(_Section, frozen=True):
    playground: bool = False  # served in dev mode whatever this says


class LinkConfig(_Section, frozen=True):
    namespace: str = ""
    max_retry: NonNegativeInt = 16
    reconnect_backoff_max: Interval = 30.0
    status_interval: Interval = 2.5
    assignment_timeout: PositiveFloat = 7.5
    ping_interval: Interval = 10.0


class AdmissionConfig(_Section, frozen=True):
    max_jobs: NonNegativeInt = 0
    load_threshold: NonNegativeFloat = 0.7


class PoolConfig(_Section, frozen=True):
    num_idle_processes: NonNegativeInt = 2
    max_jobs_per_process: PositiveInt = 1
    max_concurrent_spawns: PositiveInt = 2
    initialize_timeout: PositiveFloat = 10.0
    shutdown_timeout: PositiveFloat = 60.0
    ping_interval: Interval = 2.5
    ping_timeout: PositiveFloat = 15.0
    memory_sample_interval: Interval = 5.0
    job_memory_warn_mb: NonNegativeFloat = 500.0
    job_memory_limit_mb: NonNegativeFloat = 0.0
    # "auto": where the kernel offers a memory cgroup (v2 delegated by systemd, or a writable
    # v1 memory hierarchy) each child gets one with the limit; "off": sampling only.
    memory_cgroups: Literal["auto", "off"] = "auto"
    max_start_failures: PositiveInt = 5
    start_backoff_max: PositiveFloat = 60.0


class PluginOptions(_Section, frozen=True):
    num_idle_processes: NonNegativeInt | None = None
    max_jobs: NonNegativeInt | None = None
    load_threshold: NonNegativeFloat | None = None
    # A ceiling for this plugin's jobs (0: none), in place of [pool] job_memory_limit_mb.
    job_memory_limit_mb: NonNegativeFloat | None = None


class PluginsConfig(_Section, frozen=True):
    enabled: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    options: dict[str, PluginOptions] = msgspec.field(default_factory=dict)

    def is_enabled(self, name: str) -> bool:
        if name in self.disabled:
            return False
        return not self.enabled or name in self.enabled


class Config(_Section, frozen=True):
    livekit: LiveKitConfig = msgspec.field(default_factory=LiveKitConfig)
    daemon: DaemonConfig = msgspec.field(default_factory=DaemonConfig)
    http: HttpConfig = msgspec.field(default_factory=HttpConfig)
    link: LinkConfig = msgspec.field(default_factory=LinkConfig)
    admission: AdmissionConfig = msgspec.field(default_factory=AdmissionConfig)
    pool: PoolConfig = msgspec.field(default_factory=PoolConfig)
    plugins: PluginsConfig = msgspec.field(default_factory=PluginsConfig)
    source: str = msgspec.field(default="<defaults>", name="_source")

    @property
    def load_threshold(self) -> float:
        """The admission load limit in force: none in dev mode, as livekit-agents users expect
        (a developer's machine is busy with builds and tests, and a refused dispatch from a
        busy laptop looks like a broken agent)."""
        return math.inf if self.daemon.dev else self.admission.load_threshold

    @property
    def serves_playground(self) -> bool:
        """The browser playground is a development tool: on in dev mode, else only when asked."""
        return self.daemon.dev or self.http.playground

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data, secrets replaced by a mask."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        data.pop("_source", None)
        for key in SECRET_KEYS:
            if data["livekit"].get(key):
                data["livekit"][key] = MASK
        return data


_ENV_ALIASES = {
    "LIVEKIT_URL": ("livekit", "url"),
    "LIVEKIT_API_KEY": ("livekit", "api_key"),
    "LIVEKIT_API_SECRET": ("livekit", "api_secret"),
}
_SECTIONS = ("livekit", "daemon", "http", "link", "admission", "pool", "plugins")


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the effective configuration.

    ``overrides`` are dotted keys from command-line flags (``{"daemon.dev": True}``);
    ``None`` values are ignored so that unset flags fall through to lower layers.
    """
    environ = os.environ if environ is None else environ
    layers: list[tuple[str, dict[str, Any]]] = []
    file_text = ""
    source = "<defaults>"
    if path is not None:
        source = str(path)
        file_text, data = _read_toml(Path(path))
        layers.append((source, data))
    layers.append(("environment", _from_environment(environ)))
    layers.append(("command line", _from_overrides(overrides or {})))

    merged: dict[str, Any] = {}
    for origin, layer in layers:
        try:
            _validate_layer(layer)
        except msgspec.ValidationError as exc:
            raise _explain(exc, origin, file_text if origin == source else "", environ) from None
        _deep_merge(merged, layer)
    merged["_source"] = source
    try:
        config = msgspec.convert(merged, Config)
    except msgspec.ValidationError as exc:
        raise _explain(exc, source, file_text) from None
    _check_required(config)
    return config


def _read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: config file is not UTF-8: {exc.reason}") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None


def _validate_layer(layer: dict[str, Any]) -> None:
    """Type-check one layer on its own so an error names the layer it came from."""
    msgspec.convert(layer, Config)


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Environment values are text: convert each to its key's type here, naming the variable."""
    layer: dict[str, Any] = {}
    for name, (section, key) in _ENV_ALIASES.items():
        if environ.get(name):
            layer.setdefault(section, {})[key] = environ[name]
    for name, value in environ.items():
        if not name.startswith("ROOMD_"):
            continue
        section, key = _split_env_name(name)
        layer.setdefault(section, {})[key] = _convert_env(name, value, _field_type(section, key))
    return layer


def _split_env_name(name: str) -> tuple[str, str]:
    rest = name.removeprefix("ROOMD_").lower()
    for section in _SECTIONS:
        if rest.startswith(section + "_"):
            return section, rest[len(section) + 1 :]
    raise ConfigError(
        f"environment {name}: unknown section; expected ROOMD_<SECTION>_<KEY> with SECTION one of "
        + ", ".join(s.upper() for s in _SECTIONS)
    )


def _field_type(section: str, key: str) -> Any:
    section_struct = next(f.type for f in msgspec.structs.fields(Config) if f.name == section)
    for field in msgspec.structs.fields(section_struct):
        if field.encode_name == key and key != "options":
            return field.type
    raise ConfigError(f"environment ROOMD_{section.upper()}_{key.upper()}: unknown key {section}.{key}")


def _convert_env(name: str, value: str, field_type: Any) -> Any:
    raw: Any = value
    if getattr(field_type, "__origin__", None) is tuple:
        raw = [item.strip() for item in value.split(",") if item.strip()]
    elif field_type is bool:
        lowered = value.strip().lower()
        if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigError(f"environment {name}: expected a boolean (true/false), got {value!r}")
        raw = lowered in ("1", "true", "yes", "on")
    try:
        return msgspec.convert(raw, field_type, strict=False)
    except msgspec.ValidationError as exc:
        shown = "" if name.endswith("SECRET") else f" (value {value!r})"
        raise ConfigError(f"environment {name}: {exc}{shown}") from None


def _from_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, key = dotted.split(".", 1)
        layer.setdefault(section, {})[key] = value
    return layer


def _deep_merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


_PATH_RE = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_UNKNOWN_RE = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")


def _explain(
    exc: msgspec.ValidationError,
    origin: str,
    file_text: str,
    environ: Mapping[str, str] | None = None,
) -> ConfigError:
    message = str(exc)
    path = ""
    match = _PATH_RE.search(message)
    if match:
        # msgspec writes a dict value's position as "[...]": the key is the plugin's name.
        path = match.group("path").replace("[...]", ".*").strip(".")
        message = message[: match.start()]
    unknown = _UNKNOWN_RE.search(message)
    if unknown:
        key = f"{path}.{unknown.group('field')}" if path else unknown.group("field")
        return ConfigError(_where(origin, key, file_text) + f"unknown key {key!r}")
    if message.startswith("Invalid enum value") and (choices := _choices(path)):
        message += f" (expected one of {', '.join(repr(c) for c in choices)})"
    if origin == "environment":
        name = _env_name(path)
        shown = "" if path.endswith(tuple(SECRET_KEYS)) else f" (value {(environ or {}).get(name)!r})"
        return ConfigError(f"environment {name}: {message}{shown}")
    return ConfigError(_where(origin, path, file_text) + f"{path}: {message}")


def _choices(dotted_key: str) -> tuple[Any, ...]:
    """The values a ``Literal`` key accepts (``pool.memory_cgroups``: "auto", "off"); () if not one."""
    kind: Any = Config
    for part in dotted_key.split("."):
        hints = typing.get_type_hints(kind) if isinstance(kind, type) else {}
        if part not in hints:
            return ()
        kind = hints[part]
    return typing.get_args(kind) if typing.get_origin(kind) is Literal else ()


def _env_name(path: str) -> str:
    parts = path.split(".")
    if len(parts) == 2:
        for alias, target in _ENV_ALIASES.items():
            if target == tuple(parts):
                return alias
        return f"ROOMD_{parts[0].upper()}_{parts[1].upper()}"
    return path


def _where(origin: str, dotted_key: str, file_text: str) -> str:
    line = _find_line(file_text, dotted_key) if file_text else None
    return f"{origin}:{line}: " if line else f"{origin}: "


def _find_line(text: str, dotted_key: str) -> int | None:
    """The line that sets ``dotted_key``: its table header then its ``key =`` line."""
    *tables, key = dotted_key.split(".")
    wanted_table = ".".join(tables)
    table = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        header = re.fullmatch(r"\[([^\[\]]+)\]", line)
        if header:
            table = header.group(1).strip()
            if _table_matches(table, dotted_key):
                return number
            continue
        if _table_matches(table, wanted_table) and re.match(rf"{re.escape(key)}\s*=", line):
            return number
    return None


def _table_matches(table: str, pattern: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace(r"\*", r"[^.]+"), table) is not None


def _check_required(config: Config) -> None:
    if config.daemon.dev:
        return
    missing = [
        (key, env)
        for key, env in (("url", "LIVEKIT_URL"), ("api_key", "LIVEKIT_API_KEY"),
                         ("api_secret", "LIVEKIT_API_SECRET"))
        if not getattr(config.livekit, key)
    ]
    if missing:
        key, env = missing[0]
        raise ConfigError(
            f"{config.source}: livekit.{key} is not set (set it in the config file or {env}, "
            "or run with --dev to start a local development server)"
        )
    problem = url_problem(config.livekit.url)
    if problem:
        raise ConfigError(f"{config.source}: livekit.url {problem}, got {config.livekit.url!r}")


def url_problem(url: str) -> str:
    """What is wrong with a LiveKit server URL, or "" when it can be connected to."""
    if not re.match(r"^(wss?|https?)://", url):
        return "must start with ws://, wss://, http:// or https://"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port out of range or not a number
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if not parts.hostname:
        return "names no host"
    if port == 0:
        return "has port 0, which cannot be connected to"
    return ""
