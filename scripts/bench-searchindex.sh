#!/usr/bin/env bash
# bench-searchindex.sh: what the search index costs govlogd's appends,
# side by side in one run. Builds govlogd twice, A as shipped and B with
# the build tag govlog_nosearchindex (its appends write no search
# postings; it refuses searches and is never shipped), then alternates
# them, ROUNDS rounds, each bench on a new data directory:
#
#   govlog bench -n 20000 -c 64 --json                # single decisions
#   govlog bench -n 100000 -c 4 --batch 1000 --json   # the batch endpoint
#
# The order is A B in odd rounds and B A in even ones. It prints a line a
# bench (round, load, binary, decisions/s, server CPU µs/decision) and,
# per load, the medians and the medians of the paired ratios CPU(A)/CPU(B)
# and throughput(B)/throughput(A): the index's cost.
#
# Settings (environment):
#   ROUNDS   rounds (4)
#   LISTEN   govlogd's loopback address (127.0.0.1:8093)
#   DIR      binaries, data directories and results go there (a new
#            directory under $TMPDIR)
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. scripts/lib.sh

ROUNDS=${ROUNDS:-4}
LISTEN=${LISTEN:-127.0.0.1:8093}
DIR=${DIR:-$(mktemp -d "${TMPDIR:-/tmp}/govlog-searchindex.XXXXXX")}
GO=${GO:-go}
mkdir -p "$DIR"

"$GO" build -o "$DIR/govlog" ./cmd/govlog
"$GO" build -o "$DIR/govlogd-A" ./cmd/govlogd
"$GO" build -tags govlog_nosearchindex -o "$DIR/govlogd-B" ./cmd/govlogd

pid=
trap '[ -z "$pid" ] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }' EXIT

# bench BIN LOAD ROUND ARGS...: one bench against a new govlogd.
bench() {
	local bin=$1 load=$2 round=$3
	shift 3
	local data="$DIR/data-$round-$load-$bin"
	"$DIR/govlogd-$bin" --listen "$LISTEN" --data "$data" >"$data.log" 2>&1 &
	pid=$!
	wait_ready "http://$LISTEN" "$pid" "govlogd-$bin" "$data.log"
	"$DIR/govlog" bench --url "http://$LISTEN" --json --quiet "$@" >"$data.json"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
	rm -rf "$data"
	jq -r --arg r "$round" --arg l "$load" --arg b "$bin" \
		'if .acknowledged != .decisions or .verify_failures != 0 then error("failed requests: \(.errors)") else
		"\($r)\t\($l)\t\($b)\t\(.decisions_per_second|floor)\t\(.server_cpu_us_per_decision*10|round/10)" end' \
		"$data.json" | tee -a "$DIR/results.tsv"
}

printf 'round\tload\tbuild\tdecisions/s\tserver CPU us/decision\n'
: >"$DIR/results.tsv"
for round in $(seq 1 "$ROUNDS"); do
	order="A B"
	[ $((round % 2)) = 1 ] || order="B A"
	for b in $order; do bench "$b" single "$round" -n 20000 -c 64; done
	for b in $order; do bench "$b" batch "$round" -n 100000 -c 4 --batch 1000; done
done

# Medians: of each build's figures, and of the paired ratios of a round.
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
for load in single batch; do
	sel() { awk -F'\t' -v l="$load" -v b="$1" -v c="$2" '$2==l && $3==b {print $1 "\t" $c}' "$DIR/results.tsv" | sort -n; }
	ratio() { join -t $'\t' <(sel "$1" "$3") <(sel "$2" "$3") | awk -F'\t' '{printf "%.3f\n", $2/$3}'; }
	echo "$load: decisions/s A $(sel A 4 | cut -f2 | median), B $(sel B 4 | cut -f2 | median);" \
		"CPU us/decision A $(sel A 5 | cut -f2 | median), B $(sel B 5 | cut -f2 | median);" \
		"paired medians CPU(A)/CPU(B) $(ratio A B 5 | median), throughput(B)/throughput(A) $(ratio B A 4 | median)"
done
echo "results: $DIR/results.tsv"
