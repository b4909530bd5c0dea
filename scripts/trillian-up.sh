#!/usr/bin/env bash
# trillian-up.sh: build Trillian from the version in go.mod, give it a fresh
# MariaDB/MySQL database, start trillian_log_server and trillian_log_signer on
# loopback, create a log tree and print how to run govlogd on it.
#
# Everything it makes lives in $TRILLIAN_DIR (default .trillian, ignored by
# git): bin/ (binaries), run/ (pid files, database name, tree id), log/.
# Run it again after trillian-down to restart the same servers on the same
# database and tree. scripts/trillian-down.sh stops exactly what it started.
#
# Settings (environment):
#   TRILLIAN_DIR                 state directory              (.trillian)
#   TRILLIAN_DB                  database to create           (govlog_trillian)
#   MYSQL_HOST, MYSQL_PORT       MariaDB/MySQL server         (127.0.0.1, 3306)
#   MYSQL_USER                   user, no password            (root)
#   TRILLIAN_RPC, TRILLIAN_HTTP  log server gRPC and metrics  (127.0.0.1:8090, 127.0.0.1:8091)
#   SIGNER_RPC, SIGNER_HTTP      log signer gRPC and metrics  (127.0.0.1:8092, 127.0.0.1:8093)
#   SEQUENCER_INTERVAL           signer's integration period  (20ms)
#   BATCH_SIZE                   leaves per integration pass  (1000)
set -euo pipefail

cd "$(dirname "$0")/.."

GO=${GO:-go}
TRILLIAN_DIR=${TRILLIAN_DIR:-.trillian}
TRILLIAN_DB=${TRILLIAN_DB:-govlog_trillian}
MYSQL_HOST=${MYSQL_HOST:-127.0.0.1}
MYSQL_PORT=${MYSQL_PORT:-3306}
MYSQL_USER=${MYSQL_USER:-root}
TRILLIAN_RPC=${TRILLIAN_RPC:-127.0.0.1:8090}
TRILLIAN_HTTP=${TRILLIAN_HTTP:-127.0.0.1:8091}
SIGNER_RPC=${SIGNER_RPC:-127.0.0.1:8092}
SIGNER_HTTP=${SIGNER_HTTP:-127.0.0.1:8093}
SEQUENCER_INTERVAL=${SEQUENCER_INTERVAL:-20ms}
BATCH_SIZE=${BATCH_SIZE:-1000}

BIN=$TRILLIAN_DIR/bin
RUN=$TRILLIAN_DIR/run
LOGS=$TRILLIAN_DIR/log
mkdir -p "$BIN" "$RUN" "$LOGS"

die() { echo "trillian-up: $*" >&2; exit 1; }

case "$TRILLIAN_DB" in
*[!A-Za-z0-9_]* | "") die "TRILLIAN_DB must be letters, digits and underscores, got '$TRILLIAN_DB'" ;;
esac
for a in "$TRILLIAN_RPC" "$TRILLIAN_HTTP" "$SIGNER_RPC" "$SIGNER_HTTP"; do
	case "$a" in
	127.* | localhost:* | "[::1]":*) ;;
	*) die "refusing to listen on $a: Trillian has no authentication, bind it to loopback" ;;
	esac
done

MYSQL=$(command -v mariadb || command -v mysql || true)
[ -n "$MYSQL" ] || die "needs the mariadb (or mysql) command-line client"
sql() { "$MYSQL" --protocol=tcp -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER" "$@"; }
sql -e 'SELECT 1' >/dev/null 2>&1 || die "cannot connect to MariaDB/MySQL at $MYSQL_HOST:$MYSQL_PORT as $MYSQL_USER (no password)"

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
if running trillian_log_server || running trillian_log_signer; then
	die "already running (pid files in $RUN); stop it first with make trillian-down"
fi

# 1. Build the servers from the Trillian version that go.mod requires.
version=$($GO list -m -f '{{.Version}}' github.com/google/trillian) || die "github.com/google/trillian is not in go.mod"
moddir=$($GO list -m -f '{{.Dir}}' github.com/google/trillian)
echo "trillian-up: building Trillian $version into $BIN (tags mysql,etcd)"
start=$(date +%s)
GOBIN=$(cd "$BIN" && pwd) $GO install -tags=mysql,etcd \
	"github.com/google/trillian/cmd/trillian_log_server@$version" \
	"github.com/google/trillian/cmd/trillian_log_signer@$version" \
	"github.com/google/trillian/cmd/createtree@$version"
echo "trillian-up: built in $(($(date +%s) - start))s"

# 2. A fresh database with Trillian's schema; reused only if we created it.
if [ -f "$RUN/db" ] && [ "$(cat "$RUN/db")" = "$TRILLIAN_DB" ] && [ -f "$RUN/tree_id" ]; then
	echo "trillian-up: reusing database $TRILLIAN_DB and tree $(cat "$RUN/tree_id") created earlier"
else
	exists=$(sql -N -e "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='$TRILLIAN_DB'")
	[ "$exists" = 0 ] || die "database $TRILLIAN_DB already exists and was not created by this script; pick another TRILLIAN_DB or drop it yourself"
	rm -f "$RUN/db" "$RUN/tree_id"
	sql -e "CREATE DATABASE \`$TRILLIAN_DB\`"
	echo "$TRILLIAN_DB" >"$RUN/db"
	sql "$TRILLIAN_DB" <"$moddir/storage/mysql/schema/storage.sql"
	echo "trillian-up: created database $TRILLIAN_DB with Trillian's schema"
fi
DSN="$MYSQL_USER@tcp($MYSQL_HOST:$MYSQL_PORT)/$TRILLIAN_DB"

# 3. Start both servers, detached, each with its pid file.
start_server() {
	local name=$1
	shift
	nohup "$BIN/$name" "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
	echo $! >"$RUN/$name.pid"
}
common=(--storage_system=mysql "--mysql_uri=$DSN" --quota_system=noop)
start_server trillian_log_server "${common[@]}" \
	"--rpc_endpoint=$TRILLIAN_RPC" "--http_endpoint=$TRILLIAN_HTTP"
start_server trillian_log_signer "${common[@]}" \
	--force_master "--sequencer_interval=$SEQUENCER_INTERVAL" "--batch_size=$BATCH_SIZE" \
	"--rpc_endpoint=$SIGNER_RPC" "--http_endpoint=$SIGNER_HTTP"

healthy() { curl -fsS "http://$1/healthz" >/dev/null 2>&1; }
for i in $(seq 1 100); do
	if healthy "$TRILLIAN_HTTP" && healthy "$SIGNER_HTTP"; then
		break
	fi
	for name in trillian_log_server trillian_log_signer; do
		running "$name" || die "$name exited; see $LOGS/$name.log"
	done
	[ "$i" -lt 100 ] || die "servers not healthy after 20s; see $LOGS/"
	sleep 0.2
done
echo "trillian-up: trillian_log_server on $TRILLIAN_RPC, trillian_log_signer on $SIGNER_RPC (pids in $RUN)"

# 4. A log tree (admin API CreateTree, then InitLog), created once.
if [ ! -f "$RUN/tree_id" ]; then
	"$BIN/createtree" "--admin_server=$TRILLIAN_RPC" --display_name=govlog --max_root_duration=0 \
		>"$RUN/tree_id.tmp" 2>"$LOGS/createtree.log" || die "createtree failed; see $LOGS/createtree.log"
	mv "$RUN/tree_id.tmp" "$RUN/tree_id"
fi
TREE_ID=$(cat "$RUN/tree_id")

cat <<EOF

Trillian is up: log tree $TREE_ID in database $TRILLIAN_DB.
Start govlogd on it (its own tables go into the same database):

  ./bin/govlogd --listen 127.0.0.1:8080 --data ./data-trillian \\
      --backend trillian --trillian-addr $TRILLIAN_RPC --trillian-tree-id $TREE_ID \\
      --trillian-mysql-dsn '$DSN'

Several govlogd replicas may serve the same tree (give each its own --listen
and the same key files). Stop Trillian with: make trillian-down
EOF
