# shellcheck shell=bash
# Sourced by run_local_experiments.sh and tests/run.sh: create or reuse .venv/ in the repo root and
# install the project from its own files (requirements.txt, pyproject.toml). Reinstalls only when one
# of those files changed since the last install.

ensure_venv() {
  local root python stamp want
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  python=${PYTHON:-python3.11}
  command -v "$python" >/dev/null 2>&1 || python=python3
  if [ ! -x "$root/.venv/bin/python" ]; then
    echo "creating $root/.venv with $("$python" --version)"
    "$python" -m venv "$root/.venv"
  fi
  stamp="$root/.venv/.installed"
  want=$(cat "$root/requirements.txt" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing requirements into .venv (first run: a few minutes)"
    if ! "$root/.venv/bin/python" -m pip install --disable-pip-version-check \
      -r "$root/requirements.txt" -e "${root}[dev]" >"$root/.venv/pip.log" 2>&1; then
      tail -n 20 "$root/.venv/pip.log" >&2
      echo "error: installing into .venv failed (full log: .venv/pip.log)" >&2
      return 2
    fi
    echo "$want" >"$stamp"
  fi
}
