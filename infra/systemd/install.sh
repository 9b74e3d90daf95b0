#!/usr/bin/env bash
# Install the gateway under systemd on this host (run as root from the checkout):
#
#   sudo PREFIX=/opt/tradingsystem infra/systemd/install.sh
#
# - creates the system user `tradingsystem`;
# - installs the gateway into $PREFIX/.venv (uv sync --frozen --no-dev --package gateway), with the ops
#   app beside it for validate-env (--package ops, without the embedded PostgreSQL);
# - writes /etc/tradingsystem/gateway.env from services/gateway/.env.example when absent;
# - installs the gateway unit and the daily session-backup timer, with $PREFIX substituted;
# - enables the backup timer; the gateway itself is enabled only once a session exists.
set -euo pipefail

PREFIX="${PREFIX:-/opt/tradingsystem}"
CHECKOUT="$(cd "$(dirname "$0")/../.." && pwd)"
ENV_DIR=/etc/tradingsystem
ENV_FILE="$ENV_DIR/gateway.env"
STATE=/var/lib/tradingsystem/gateway
UNIT_DIR=/etc/systemd/system

if [[ $EUID -ne 0 ]]; then
    echo "install.sh: run as root (sudo)" >&2
    exit 1
fi
if [[ "$CHECKOUT" != "$PREFIX" ]]; then
    echo "install.sh: the checkout is $CHECKOUT but PREFIX is $PREFIX; clone into $PREFIX or set PREFIX=$CHECKOUT" >&2
    exit 1
fi

id -u tradingsystem >/dev/null 2>&1 ||
    useradd --system --home-dir /var/lib/tradingsystem --shell /usr/sbin/nologin tradingsystem

(cd "$PREFIX" && uv sync --frozen --no-dev --package gateway --package ops)
test -x "$PREFIX/.venv/bin/gateway"

install -d -m 0750 -o root -g tradingsystem "$ENV_DIR"
if [[ ! -e "$ENV_FILE" ]]; then
    # The unit sets the queue and session paths; the env file must not override them.
    grep -v -E '^(FAILURE_QUEUE_PATH|TELEGRAM_SESSION_PATH)=' "$PREFIX/services/gateway/.env.example" >"$ENV_FILE"
    chown root:tradingsystem "$ENV_FILE"
    chmod 0640 "$ENV_FILE"
    echo "wrote $ENV_FILE: fill in TELEGRAM_API_ID, TELEGRAM_API_HASH, API_SECRET_TOKEN, API_ENDPOINT"
fi
install -d -m 0700 -o tradingsystem -g tradingsystem "$STATE" "$STATE/queue" "$STATE/session" "$STATE/backups"

for unit in tradingsystem-gateway.service tradingsystem-gateway-backup.service tradingsystem-gateway-backup.timer; do
    sed "s#/opt/tradingsystem#$PREFIX#g" "$CHECKOUT/infra/systemd/$unit" >"$UNIT_DIR/$unit"
    chmod 0644 "$UNIT_DIR/$unit"
done
systemd-analyze verify "$UNIT_DIR/tradingsystem-gateway.service" "$UNIT_DIR/tradingsystem-gateway-backup.timer"
systemctl daemon-reload
systemctl enable --now tradingsystem-gateway-backup.timer

cat <<NEXT
Installed. Next:
  1. edit $ENV_FILE, then check it:   $PREFIX/.venv/bin/validate-env --gateway $ENV_FILE
  2. log in to Telegram once (interactive; see docs/runbooks/telegram-reauth.md):
       sudo -u tradingsystem bash -c 'set -a; . $ENV_FILE; TELEGRAM_SESSION_PATH=$STATE/session/gateway.session $PREFIX/.venv/bin/gateway login'
  3. start it:                          systemctl enable --now tradingsystem-gateway
     and watch it:                      journalctl -fu tradingsystem-gateway
NEXT
