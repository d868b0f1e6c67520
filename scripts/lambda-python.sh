#!/usr/bin/env bash
# Prints the path of a Python of the version the Lambda functions run (template.yaml's Globals
# `Runtime: pythonX.Y`), so tests and builds use the runtime's interpreter, not whatever python3 is.
# Looks in pyenv's versions (newest first), then on PATH; a pyenv shim on PATH is skipped unless it
# really runs that version. Exits 1, saying how to get one, when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^ *Runtime: python\([0-9][0-9.]*\)$/\1/p' template.yaml | head -n 1)
[ -n "$version" ] || { echo "error: no 'Runtime: pythonX.Y' in template.yaml" >&2; exit 1; }
candidates=()
if command -v pyenv >/dev/null; then
    mapfile -t candidates < <(ls -d "$(pyenv root)/versions/$version"*/bin/"python$version" 2>/dev/null | sort -rV)
fi
candidates+=("$(command -v "python$version" || true)")
for python in "${candidates[@]}"; do
    if [ -x "$python" ] && "$python" -c "import sys; sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$version')" 2>/dev/null; then
        echo "$python"
        exit 0
    fi
done
echo "error: no Python $version (the Lambda runtime's, from template.yaml) found: install it with" \
     "'pyenv install $version' or your package manager (python$version on PATH)" >&2
exit 1
