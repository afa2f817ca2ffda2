#!/usr/bin/env bash
# Run the Presidio throughput/accuracy benchmark, installing its pinned environment first.
#
#   bench/presidio/run.sh [presidio_bench.py args...]      e.g. --max-bytes 300 --repeat 40
#
# Environment:
#   PRESIDIO_VENV  where the environment lives (default target/presidio-venv, relative to the
#                  repo root unless absolute); created if missing, reinstalled when
#                  requirements.txt changes.
#   PYTHON         interpreter to build it with (default: python3.11, else python3).
# Uses `python -m venv`; where that is unavailable (e.g. Debian without python3-venv) it falls
# back to `pip install --target $PRESIDIO_VENV/site-packages` and runs with PYTHONPATH.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
req="$here/requirements.txt"

venv="${PRESIDIO_VENV:-target/presidio-venv}"
case "$venv" in
  /*) ;;
  *) venv="$root/$venv" ;;
esac

py="${PYTHON:-}"
if [ -z "$py" ]; then
  if command -v python3.11 >/dev/null 2>&1; then py=python3.11; else py=python3; fi
fi
command -v "$py" >/dev/null 2>&1 || { echo "run.sh: $py not found" >&2; exit 1; }

stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
pip_flags=(-q --disable-pip-version-check --no-input)

runner() {  # print how to run python in the installed environment
  if [ -x "$venv/bin/python" ]; then
    echo "venv"
  elif [ -f "$venv/.pip-target" ]; then
    echo "target"
  else
    echo "none"
  fi
}

if [ "$(runner)" = none ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  t0=$(date +%s)
  mkdir -p "$(dirname "$venv")"
  if [ "$(runner)" = none ]; then
    if "$py" -m venv "$venv" >/dev/null 2>&1 && [ -x "$venv/bin/python" ] \
        && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
      echo "run.sh: created venv $venv" >&2
    else
      echo "run.sh: '$py -m venv' unavailable, falling back to pip install --target" >&2
      rm -rf "$venv"
      mkdir -p "$venv/site-packages"
      touch "$venv/.pip-target"
    fi
  fi
  echo "run.sh: installing $(grep -c '==' "$req") pinned packages into $venv ..." >&2
  if [ "$(runner)" = venv ]; then
    "$venv/bin/python" -m pip install "${pip_flags[@]}" -r "$req"
  else
    # --no-warn-conflicts: pip would compare against the interpreter's own site-packages,
    # which this isolated target directory does not share.
    PIP_ROOT_USER_ACTION=ignore "$py" -m pip install "${pip_flags[@]}" --no-warn-conflicts --upgrade \
      --target "$venv/site-packages" -r "$req"
  fi
  echo "$want" >"$stamp"
  echo "run.sh: install took $(( $(date +%s) - t0 )) s" >&2
fi

if [ "$(runner)" = venv ]; then
  exec "$venv/bin/python" "$here/presidio_bench.py" "$@"
else
  PYTHONPATH="$venv/site-packages${PYTHONPATH:+:$PYTHONPATH}" exec "$py" "$here/presidio_bench.py" "$@"
fi
