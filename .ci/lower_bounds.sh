#!/usr/bin/env bash
# The lower bounds of pyproject.toml, tested: a fresh virtual environment with every dependency at
# its floor (.ci/lower-bounds.txt), a check that pip installed exactly those versions, ruff at its
# floor, then the fast test suite, where a package of the dev extra that cannot be imported at its
# floor (a broken Ray, say) fails its tests instead of skipping them (tests/conftest.py).
#
# Usage: .ci/lower_bounds.sh [VENV_DIR]   (default: .ci-venv-floor in the repository root;
# a relative VENV_DIR is taken from the current directory). The folder is deleted and rebuilt.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.ci-venv-floor}"
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
cd "$root"
constraints=.ci/lower-bounds.txt
start=$(date +%s)

rm -rf "$venv"
python3 -m venv "$venv"
py="$venv/bin/python"

# torch first: the CPU build from local disk, so nothing later can pull a CUDA build.
"$py" -m pip install --quiet torch==2.13.0
"$py" -m pip install --quiet -e ".[dev]" -c "$constraints"
"$py" -m pip check

echo "lower bounds: pinned against installed"
"$py" - "$constraints" <<'PY'
import re
import sys
from importlib.metadata import PackageNotFoundError, version

wrong = []
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
    if match is None:
        sys.exit(f"lower bounds: not a `name==version` pin: {line!r}")
    name, pin = match.groups()
    try:
        got = version(name)
    except PackageNotFoundError:
        got = "(not installed)"
    ok = got.split("+", 1)[0] == pin  # torch 2.13.0+cpu is torch 2.13.0
    print(f"  {name:<20} {pin:<10} {got}{'' if ok else '   <-- NOT THE FLOOR'}")
    if not ok:
        wrong.append(name)
if wrong:
    sys.exit(f"lower bounds: pip did not install the floor of {', '.join(wrong)}")
PY

# ruff at its floor must accept the code as the newest ruff does (the tests run either way).
# (The venv folders are left out by pyproject's extend-exclude.)
failed=()
"$venv/bin/ruff" check --no-cache . || failed+=("ruff check")
"$venv/bin/ruff" format --no-cache --check . || failed+=("ruff format")

# The fast suite (`slow` tests are deselected by pyproject's addopts); no test collected fails.
code=0
"$venv/bin/pytest" -q -p no:cacheprovider || code=$?
if [ "$code" -eq 5 ]; then
  echo "lower bounds: pytest collected no tests" >&2
fi
[ "$code" -eq 0 ] || failed+=("pytest (exit $code)")

echo "lower bounds: $(( $(date +%s) - start ))s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "lower bounds: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "lower bounds: passed"
