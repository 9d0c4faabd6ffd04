#!/usr/bin/env bash
# Lint the packages that are kept clean: ruff (rules in pyproject.toml) and mypy --strict.
# The SDK (agents/) and the plugins are not yet held to this and are not checked here.
# Usage: bash packaging/lint.sh   (uses .venv, or LINT_PYTHON, with the `test` extra installed)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=${LINT_PYTHON:-$repo/.venv/bin/python}
[ -x "$py" ] || py=python3
clean=(daemon ipc child)

cd "$repo"
"$py" -m ruff check "${clean[@]}"

# The folders are the parts of the `roomd` namespace (pyproject.toml package-dir); mypy
# resolves `roomd.daemon` and friends through a throwaway tree of links named that way.
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/roomd"
for part in daemon ipc child agents plugins; do ln -s "$repo/$part" "$tree/roomd/$part"; done
cd "$tree"
"$py" -m mypy --strict --config-file "$repo/pyproject.toml" --namespace-packages --explicit-package-bases \
    -p roomd.ipc -p roomd.daemon -p roomd.child
