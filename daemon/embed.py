"""The daemon as a library: the one module the SDK imports, and only lazily.

``roomd.agents.cli.run_app`` and ``roomd.agents.Worker`` run the daemon's supervisor in the
agent's own process (single-file mode). They import this module inside their functions, never
at module level, so importing the SDK does not import the daemon, and the daemon itself never
imports the SDK. What they need of the daemon is named here and nowhere else.
"""

from __future__ import annotations

from roomd.ipc.script import ScriptTarget, ScriptTargetError

from .config import Config, ConfigError, load_config
from .console import require_microphone, run_console
from .console_session import ConsoleOptions
from .devserver import DevServerError, dev_server_for
from .logging import configure_logging
from .plugin_runtime import PluginState
from .plugins.discovery import Discovery, PluginSpec
from .plugins.script import describe_options, script_plugin
from .jobs import JobOutcome
from .supervisor import ReloadResult, Supervisor, SupervisorState

__all__ = [
    "Config", "ConfigError", "ConsoleOptions", "DevServerError", "Discovery", "JobOutcome", "PluginSpec", "PluginState",
    "ReloadResult", "ScriptTarget", "ScriptTargetError", "Supervisor", "SupervisorState", "configure_logging",
    "describe_options", "dev_server_for", "load_config", "require_microphone", "run_console", "script_plugin",
]
