#!/usr/bin/env bash
# Set up (see setup.sh), then lint, type-check and run the test suite.
# Extra arguments go to pytest, e.g. `infra/dev/test.sh -k parser` or `-m slow`.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash infra/dev/setup.sh

echo "== ruff" >&2
.venv/bin/ruff check core handlers tests infra
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
# A fresh temp root per run, removed with rm (deep hostile trees would defeat Python's rmtree).
basetemp=$(mktemp -d "${TMPDIR:-/tmp}/bucketbuild-tests.XXXXXX")
trap 'rm -rf "$basetemp"' EXIT
status=0
.venv/bin/python -m pytest --basetemp="$basetemp/pytest" -p no:cacheprovider "$@" || status=$?
if [[ $status -eq 5 ]]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
