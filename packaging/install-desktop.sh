#!/usr/bin/env bash
# Linux desktop integration for a built cnndesk (dist/<flavour>/cnndesk): a menu entry, the icon
# in every size, and "Open with cnndesk" for images. Per user, no root needed.
#   packaging/install-desktop.sh [APP_DIR]     (default: dist/full/cnndesk, else dist/lite/cnndesk)
#   ./install-desktop.sh                       (inside an unpacked cnndesk .tar.gz: that app)
# A relative APP_DIR is taken from the current directory (not the repository root). The desktop
# entry and icons come from the app's own resources (_internal/resources), else from the checkout.
set -euo pipefail
here="$PWD"
app="${1:-}"
if [ -n "$app" ] && [ "${app#/}" = "$app" ]; then app="$here/$app"; fi
script_dir="$(cd "$(dirname "$0")" && pwd)"
if [ -z "$app" ] && [ -x "$script_dir/cnndesk" ] && [ -d "$script_dir/_internal" ]; then
  app="$script_dir"  # the copy of this script inside an unpacked .tar.gz
fi
if [ -z "$app" ]; then
  for d in "$script_dir/../dist/full/cnndesk" "$script_dir/../dist/lite/cnndesk"; do
    [ -x "$d/cnndesk" ] && app="$d" && break
  done
fi
[ -n "$app" ] && [ -x "$app/cnndesk" ] || { echo "no built app found${app:+ in $app}: run make package (or make package-lite) first" >&2; exit 1; }
app="$(cd "$app" && pwd)"
res="$app/_internal/resources"
[ -f "$res/cnndesk.desktop" ] || res="$script_dir/../resources"
[ -f "$res/cnndesk.desktop" ] || { echo "the desktop entry is missing (neither $app/_internal/resources nor the checkout has it)" >&2; exit 1; }
data="${XDG_DATA_HOME:-$HOME/.local/share}"
mkdir -p "$data/applications"
sed "s|^Exec=cnndesk %F|Exec=\"$app/cnndesk\" %F|" "$res/cnndesk.desktop" > "$data/applications/cnndesk.desktop"
for size in 16 32 48 64 128 256 512; do
  mkdir -p "$data/icons/hicolor/${size}x${size}/apps"
  cp "$res/icons/cnndesk-$size.png" "$data/icons/hicolor/${size}x${size}/apps/cnndesk.png"
done
if command -v update-desktop-database >/dev/null; then
  update-desktop-database -q "$data/applications" || true
else
  echo "note: update-desktop-database not found (package desktop-file-utils); \"Open with\" appears after the next log-in"
fi
if command -v gtk-update-icon-cache >/dev/null; then
  # a fresh home has no hicolor index.theme: copy the system's, or build the cache without it
  if [ ! -f "$data/icons/hicolor/index.theme" ] && [ -f /usr/share/icons/hicolor/index.theme ]; then
    cp /usr/share/icons/hicolor/index.theme "$data/icons/hicolor/"
  fi
  gtk-update-icon-cache -q --ignore-theme-index "$data/icons/hicolor" 2>/dev/null || true
fi
echo "cnndesk is in your applications menu and in \"Open with\" for images ($data/applications/cnndesk.desktop)"
