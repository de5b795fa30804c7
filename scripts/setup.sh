#!/usr/bin/env bash
# Idempotent set-up used by `make run` and `make test`:
#  1. the Debian libraries Qt needs (apt-get when root, else prints the exact command);
#  2. a virtual environment in .venv with cnndesk installed (editable) and its dependencies.
# Re-running is cheap: pip runs again only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"   # "" (make run): the app only; "dev,cluster" (make test): test tools and Ray too

# --- Debian/Ubuntu libraries -------------------------------------------------------------------
# libpulse0: QtMultimedia will not import without it; fonts: without them text renders as boxes;
# the rest: OpenGL/EGL, keyboard and the X11 (xcb) platform plugin for a real window.
debs="libpulse0 fonts-dejavu-core libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3 \
libfontconfig1 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 \
libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxcb-xinerama0"
if command -v dpkg >/dev/null 2>&1; then
  missing=""
  for p in $debs; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "setup: installing Debian packages:$missing"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq || true
      apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
      echo "setup: Qt needs these Debian packages; please run:"
      echo "    sudo apt-get install -y$missing"
    fi
  fi
fi

# --- Python 3.11+ and the virtual environment ---------------------------------------------------
py=""
for cand in python3.11 python3.12 python3.13 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    py="$cand"; break
  fi
done
if [ -z "$py" ]; then
  echo "setup: cnndesk needs Python 3.11 or newer (sudo apt-get install python3.11 python3.11-venv)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $py"
  "$py" -m venv .venv
fi
spec="$(cat pyproject.toml)|$extras"
stamp=.venv/.cnndesk-setup${extras:+-${extras//,/-}}
# the app's set-up is also satisfied by a current set-up with extras (`make test` ran before:
# .venv/.cnndesk-setup-dev-cluster-export holds the digest of pyproject.toml|dev,cluster,export)
current() { [ -f "$1" ] && [ "$(cat "$1")" = "$(printf '%s' "$2" | sha256sum)" ]; }
if [ -z "$extras" ]; then
  for other in .venv/.cnndesk-setup-?*; do
    [ -f "$other" ] || continue
    other_extras="${other#.venv/.cnndesk-setup-}"
    if current "$other" "$(cat pyproject.toml)|${other_extras//-/,}"; then exit 0; fi
  done
fi
if ! current "$stamp" "$spec"; then
  echo "setup: installing cnndesk and its dependencies into .venv (torch is large: a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip
  target="."
  [ -n "$extras" ] && target=".[$extras]"
  .venv/bin/python -m pip install -q -e "$target"
  printf '%s' "$spec" | sha256sum > "$stamp"
fi
