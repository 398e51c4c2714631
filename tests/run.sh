#!/usr/bin/env bash
# The test command: the pytest suite, ruff and shellcheck, in the repo's .venv (created if missing).
#   tests/run.sh            everything (what CI runs)
#   tests/run.sh -m 'not slow' -x     extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/venv.sh
source .ci/venv.sh
ensure_venv

if ! command -v shellcheck >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing shellcheck from Debian's packages"
    apt-get update -qq >/dev/null && apt-get install -y -qq shellcheck >/dev/null
  else
    echo "error: shellcheck is missing: install it (sudo apt-get install shellcheck)" >&2
    exit 2
  fi
fi

echo "== ruff"
.venv/bin/ruff check .
echo "== shellcheck"
git ls-files -z --cached --others --exclude-standard '*.sh' .ci/run | xargs -0 shellcheck -x
echo "== pytest"
.venv/bin/python -m pytest "$@"
