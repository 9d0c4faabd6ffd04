#!/usr/bin/env bash
# Lint the packages that are kept clean: ruff (rules in pyproject.toml) and mypy --strict.
# The SDK (agents/) and the plugins are not yet clean and are not checked here.
# Usage: bash packaging/lint.sh   (from the repository; uses .venv if it exists)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${LINT_PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
CLEAN=(daemon ipc child)
"$PY" -m ruff check "${CLEAN[@]}"
# mypy checks the installed package by module name, so the src-less layout resolves.
"$PY" -m mypy --strict -p roomd.ipc -p roomd.daemon -p roomd.child
