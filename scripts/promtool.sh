#!/usr/bin/env bash
# Runs promtool from Debian's `prometheus` package without installing it (332 MB installed):
# the .deb is downloaded once with apt-get and only usr/bin/promtool is kept, under a cache dir.
#   scripts/promtool.sh check rules ops/prometheus/alerts.yml
# PROMTOOL_CACHE overrides the cache dir (default ~/.cache/accunode/promtool).
set -euo pipefail
cache="${PROMTOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/accunode/promtool}"
bin="$cache/usr/bin/promtool"
if [ ! -x "$bin" ]; then
  if command -v promtool >/dev/null 2>&1; then exec promtool "$@"; fi
  mkdir -p "$cache"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (
    cd "$work"
    # apt-get download runs as the _apt user when it can: give it a directory it may write.
    chmod 0777 "$work"
    if ! apt-get download -qq prometheus >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      apt-get download -qq prometheus >/dev/null
    fi
    dpkg-deb -x prometheus_*.deb extracted
    mkdir -p "$cache/usr/bin"
    cp extracted/usr/bin/promtool "$bin.tmp"
    mv "$bin.tmp" "$bin"
  )
fi
exec "$bin" "$@"
