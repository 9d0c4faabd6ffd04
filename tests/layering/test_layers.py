"""The layers point one way: ipc at the bottom, the daemon and the SDK beside each other.

The daemon must run with the SDK (roomd.agents) and the child side (roomd.child) not even
importable, and the SDK reaches the daemon only lazily, through roomd.daemon.embed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import roomd.daemon
import roomd.ipc

ROOT = Path(roomd.daemon.__file__).resolve().parent.parent
FORBIDDEN_FOR_DAEMON = ("roomd.agents", "roomd.child")
EMBED = "roomd.daemon.embed"

DAEMON_MODULES = [
    "roomd.daemon", "roomd.daemon.supervisor", "roomd.daemon.cli", "roomd.daemon.embed",
    "roomd.daemon.link", "roomd.daemon.link.server_link", "roomd.daemon.pool", "roomd.daemon.pool.pool",
    "roomd.daemon.pool.child", "roomd.daemon.ops", "roomd.daemon.ops.metrics", "roomd.daemon.plugins.discovery",
    "roomd.daemon.plugins.limits", "roomd.daemon.plugins.script", "roomd.ipc", "roomd.ipc.tasks",
]


def test_the_daemon_imports_with_the_sdk_and_the_child_side_unimportable() -> None:
    script = textwrap.dedent(f"""
        import importlib, sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if any(name == p or name.startswith(p + ".") for p in {FORBIDDEN_FOR_DAEMON!r}):
                    raise ImportError(f"blocked by the layering test: {{name}}")
                return None

        sys.meta_path.insert(0, Block())
        for module in {DAEMON_MODULES!r}:
            importlib.import_module(module)
        leaked = sorted(m for m in sys.modules if m.startswith({FORBIDDEN_FOR_DAEMON!r}))
        assert not leaked, leaked
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def _python_files(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> Iterator[tuple[str, bool]]:
    """(module imported, whether at run time at module level) for each import in ``path``.

    Relative imports are resolved against the file's package; imports under
    ``if TYPE_CHECKING:`` do not run and are reported as not at module level.
    """
    tree = ast.parse(path.read_text(), str(path))
    package = "roomd." + ".".join(path.relative_to(ROOT).parent.parts)

    def visit(node: ast.AST, top: bool) -> Iterator[tuple[str, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, top
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                    name = f"{base}.{child.module}" if child.module else base
                else:
                    name = child.module or ""
                yield name, top
                for alias in child.names:  # "from roomd import agents" names a module too
                    yield f"{name}.{alias.name}", top
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from visit(child, False)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                yield from visit(child, False)
            else:
                yield from visit(child, top)

    yield from visit(tree, True)


def _within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_no_import_edge_from_the_daemon_or_ipc_upward() -> None:
    found = []
    for package, forbidden in (("daemon", FORBIDDEN_FOR_DAEMON),
                               ("ipc", (*FORBIDDEN_FOR_DAEMON, "roomd.daemon", "roomd.plugins"))):
        for path in _python_files(package):
            found += [f"{path.relative_to(ROOT)}: {name}" for name, _ in _imports(path)
                      if _within(name, *forbidden)]
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_the_sdk_reaches_the_daemon_only_through_embed_and_only_lazily() -> None:
    found = []
    for path in _python_files("agents"):
        for name, top in _imports(path):
            if not _within(name, "roomd.daemon"):
                continue
            if not _within(name, EMBED) or top:
                found.append(f"{path.relative_to(ROOT)}: {name}{' (at import time)' if top else ''}")
    assert not found, "the SDK imports the daemon other than lazily through roomd.daemon.embed:\n" + "\n".join(found)


def test_the_scan_sees_the_files_it_judges() -> None:
    # Guard against a scan that passes because it read nothing.
    assert any(p.name == "server_link.py" for p in _python_files("daemon"))
    assert any(p.name == "worker.py" for p in _python_files("agents"))
    assert Path(roomd.ipc.__file__).resolve().parent == ROOT / "ipc"
    embed_users = {p.name for p in _python_files("agents")
                   if any(_within(n, EMBED) for n, _ in _imports(p))}
    assert embed_users == {"cli.py", "worker.py"}
