#!/usr/bin/env bash
# Manual compatibility check: the OLD React dashboard (unchanged) against our workspace API.
#
#   tests/compat/old_dashboard.sh [API_URL]        # default http://127.0.0.1:3200 (`uv run stack`)
#
# Exports the old repository's frontend/dashboard into $WORKDIR (outside any worktree), installs
# it (`npm ci`, once) and playwright-core (once), starts its Vite dev server with the workspace
# proxy pointed at API_URL (through the dashboard's own WORKSPACE_PROXY_TARGET variable; no file
# of it is edited), drives the workspace page with old_dashboard.cjs in headless Chromium, and
# stops the server. Screenshots go to $WORKDIR/shots-<prefix>. Exit code: failed steps.
#
#   OLD_REPO   the old system's bare git repository (default: the mirror on this machine)
#   WORKDIR    where the dashboard is exported (default /tmp/old-dashboard)
#   PREFIX     /api (default: the proxy rewrites to /api/categories…) or "" (to /categories…,
#              what the old Traefik route did)
#   PORT       the Vite server's port (default 39080); CHROMIUM (default /usr/bin/chromium)
#
# Needs node and npm (the npm registry for the two installs). Not part of `uv run pytest`: the
# old dashboard is not in this repository.
set -euo pipefail

API_URL="${1:-http://127.0.0.1:3200}"
OLD_REPO="${OLD_REPO:-/work/.mirror/marceloterra1983+TradingSystem/repo}"
WORKDIR="${WORKDIR:-/tmp/old-dashboard}"
PREFIX="${PREFIX-/api}"
PORT="${PORT:-39080}"
HERE="$(cd "$(dirname "$0")" && pwd)"
DASHBOARD="$WORKDIR/frontend/dashboard"

curl -fsS "$API_URL/api/health" >/dev/null || { echo "no workspace API at $API_URL (start it: uv run stack)" >&2; exit 2; }

if [ ! -f "$DASHBOARD/package.json" ]; then
    echo "exporting frontend/dashboard from $OLD_REPO to $WORKDIR"
    mkdir -p "$WORKDIR"
    git -C "$OLD_REPO" archive HEAD frontend/dashboard | tar -x -C "$WORKDIR"
fi
if [ ! -d "$DASHBOARD/node_modules" ]; then
    echo "npm ci in $DASHBOARD"
    (cd "$DASHBOARD" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
if [ ! -d "$WORKDIR/driver/node_modules/playwright-core" ]; then
    mkdir -p "$WORKDIR/driver"
    (cd "$WORKDIR/driver" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund playwright-core)
fi

echo "vite on 127.0.0.1:$PORT, /api/workspace/* → $API_URL$PREFIX/*"
(cd "$DASHBOARD" && WORKSPACE_PROXY_TARGET="$API_URL$PREFIX" \
    exec node_modules/.bin/vite --host 127.0.0.1 --port "$PORT" --strictPort) > "$WORKDIR/vite.log" 2>&1 &
VITE_PID=$!
trap 'kill "$VITE_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" && break
    sleep 0.5
done

case "$PREFIX" in "") SHOTS="$WORKDIR/shots-root" ;; *) SHOTS="$WORKDIR/shots-${PREFIX#/}" ;; esac
NODE_PATH="$WORKDIR/driver/node_modules" DASHBOARD_URL="http://127.0.0.1:$PORT" API_URL="$API_URL" SHOTS="$SHOTS" \
    node "$HERE/old_dashboard.cjs"
