#!/usr/bin/env bash
# trillian-down.sh: stop the Trillian servers that trillian-up.sh started,
# by their pid files, and nothing else. The database and the tree are kept
# (trillian-up.sh restarts on them); with TRILLIAN_PURGE=1 it also drops the
# database trillian-up.sh created and forgets the tree.
set -euo pipefail

cd "$(dirname "$0")/.."

TRILLIAN_DIR=${TRILLIAN_DIR:-.trillian}
MYSQL_HOST=${MYSQL_HOST:-127.0.0.1}
MYSQL_PORT=${MYSQL_PORT:-3306}
MYSQL_USER=${MYSQL_USER:-root}
RUN=$TRILLIAN_DIR/run

stop() {
	local name=$1 pidfile=$RUN/$1.pid pid
	[ -f "$pidfile" ] || { echo "trillian-down: $name: no pid file"; return 0; }
	pid=$(cat "$pidfile")
	# Only signal the process if it still is the binary we started.
	if kill -0 "$pid" 2>/dev/null && [ "$(basename "$(readlink "/proc/$pid/exe" 2>/dev/null || echo "$name")")" = "$name" ]; then
		kill -TERM "$pid"
		# Trillian's servers wait about 5 s after SIGTERM before exiting.
		for _ in $(seq 1 150); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "trillian-down: $name ($pid) still running after 15s, sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		echo "trillian-down: stopped $name ($pid)"
	else
		echo "trillian-down: $name ($pid) was not running"
	fi
	rm -f "$pidfile"
}

stop trillian_log_signer
stop trillian_log_server

if [ -n "${TRILLIAN_PURGE:-}" ] && [ -f "$RUN/db" ]; then
	db=$(cat "$RUN/db")
	MYSQL=$(command -v mariadb || command -v mysql)
	"$MYSQL" --protocol=tcp -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER" -e "DROP DATABASE IF EXISTS \`$db\`"
	rm -f "$RUN/db" "$RUN/tree_id"
	echo "trillian-down: dropped database $db"
fi
