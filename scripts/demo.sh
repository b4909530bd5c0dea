#!/usr/bin/env bash
# demo.sh: start govlogd on a new, temporary data directory and play the
# governed-execution story against it with govlog demo (see
# docs/governed-execution.md); then stop govlogd and print where the
# evidence is.
#
# Settings (environment):
#   BIN           where govlogd and govlog are          (bin, as make build puts them)
#   DEMO_LISTEN   govlogd's loopback address              (127.0.0.1:8089)
#   DEMO_DIR      data directory and evidence go there    (a new directory under $TMPDIR)
set -euo pipefail

cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
DEMO_LISTEN=${DEMO_LISTEN:-127.0.0.1:8089}
DEMO_DIR=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/govlog-demo.XXXXXX")}
mkdir -p "$DEMO_DIR"

"$BIN/govlogd" --listen "$DEMO_LISTEN" --data "$DEMO_DIR/data" --origin demo.govlog.example/log \
	>"$DEMO_DIR/govlogd.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 200); do
	if curl -sf "http://$DEMO_LISTEN/readyz" >/dev/null 2>&1; then
		break
	fi
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "govlogd did not start:" >&2
		cat "$DEMO_DIR/govlogd.log" >&2
		exit 1
	fi
	sleep 0.05
done

status=0
"$BIN/govlog" demo --url "http://$DEMO_LISTEN" --log-key "$DEMO_DIR/data/log.vkey" --out "$DEMO_DIR/evidence" || status=$?
echo
echo "The log's data is in $DEMO_DIR/data, the evidence in $DEMO_DIR/evidence."
echo "Serve the log again to run the commands above: $BIN/govlogd --listen $DEMO_LISTEN --data $DEMO_DIR/data"
exit "$status"
