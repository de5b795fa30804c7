#!/usr/bin/env bash
# Linux desktop integration for a built cnndesk (dist/<flavour>/cnndesk): a menu entry, the icon
# in every size, and "Open with cnndesk" for images. Per user, no root needed.
#   packaging/install-desktop.sh [APP_DIR]     (default: dist/full/cnndesk, else dist/lite/cnndesk)
set -euo pipefail
cd "$(dirname "$0")/.."
app="${1:-}"
if [ -z "$app" ]; then
  for d in dist/full/cnndesk dist/lite/cnndesk; do [ -x "$d/cnndesk" ] && app="$d" && break; done
fi
[ -x "$app/cnndesk" ] || { echo "no built app found: run make package (or make package-lite) first" >&2; exit 1; }
app="$(cd "$app" && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
mkdir -p "$data/applications"
sed "s|^Exec=cnndesk %F|Exec=\"$app/cnndesk\" %F|" resources/cnndesk.desktop > "$data/applications/cnndesk.desktop"
for size in 16 32 48 64 128 256 512; do
  mkdir -p "$data/icons/hicolor/${size}x${size}/apps"
  cp "resources/icons/cnndesk-$size.png" "$data/icons/hicolor/${size}x${size}/apps/cnndesk.png"
done
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q "$data/icons/hicolor" || true
echo "cnndesk is in your applications menu and in \"Open with\" for images ($data/applications/cnndesk.desktop)"
