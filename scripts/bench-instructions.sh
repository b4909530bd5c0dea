#!/usr/bin/env bash
# bench-instructions.sh [BASE]: the instructions govlogd executes per
# decision, counted by valgrind's cachegrind, for BASE (a git revision,
# HEAD by default) and for the working tree, side by side.
#
# The server's CPU time per decision (govlog bench) spreads ±10% from one
# run to the next on a shared machine, so a change of 1-2% takes a
# hundred paired rounds to show, or never does. An instruction count
# spreads about ±0.2%: it resolves such a change in two rounds. It counts
# only user space (not the kernel's work for system calls: the socket
# reads and writes, fsync), not the cost of a cache miss, and it runs
# on valgrind's simulated CPU (no SHA-NI: SHA-256 runs its AVX2 code
# there, several times the instructions it takes on this machine). So
# it says whether a change removes work, and how much, in govlog's own
# code and the runtime's; the service's CPU per decision, side by side,
# says what that is worth.
#
# Each binary serves N1, then (on a new data directory) N2 decisions of
# govlog bench; per decision is (Ir(N2) - Ir(N1)) / (N2 - N1), which
# leaves out the start and the stop. ROUNDS rounds, the order A B, then
# B A. Under valgrind govlogd is ~20x slower, so its group commits are
# fuller than the service's; each group's work (its checkpoint's
# signature, BEGIN and COMMIT) is shared by its entries, so the count
# moves with the group size: the results give the entries a commit of
# each long run, and a run on a machine busy with other work (whose
# load generator then lags) makes smaller groups. Run it on an
# otherwise idle machine; compare builds with it, not with the
# service's group sizes.
#
# The cachegrind files of each N2 run stay in DIR:
#   cg_annotate DIR/A-N2-1.out                    # where A's instructions go
#   cg_diff DIR/A-N2-1.out DIR/B-N2-1.out > d.out && cg_annotate d.out
#
# Settings (environment):
#   N1, N2   decisions of the short and the long run (1000, 5000)
#   ROUNDS   rounds (2)
#   ARGS     govlog bench's load flags ("-c 64"; the batch endpoint:
#            ARGS="-c 4 --batch 1000" N1=10000 N2=50000; claims, counted
#            per allow and its claim: ARGS="-c 64 --claims" N1=500 N2=2500)
#   LISTEN   govlogd's loopback address (127.0.0.1:8094)
#   DIR      binaries, data directories and results go there (a new
#            directory under $TMPDIR)
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. scripts/lib.sh

BASE=${1:-HEAD}
N1=${N1:-1000}
N2=${N2:-5000}
ROUNDS=${ROUNDS:-2}
ARGS=${ARGS:--c 64}
LISTEN=${LISTEN:-127.0.0.1:8094}
DIR=${DIR:-$(mktemp -d "${TMPDIR:-/tmp}/govlog-instructions.XXXXXX")}
GO=${GO:-go}
mkdir -p "$DIR"

command -v valgrind >/dev/null || { echo "bench-instructions.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

# A from BASE, B and the load generator from the working tree; -trimpath
# names the sources alike in both, for cg_diff.
mkdir -p "$DIR/src-A"
git archive "$BASE" | tar -x -C "$DIR/src-A"
(cd "$DIR/src-A" && "$GO" build -trimpath -o "$DIR/govlogd-A" ./cmd/govlogd)
"$GO" build -trimpath -o "$DIR/govlogd-B" ./cmd/govlogd
"$GO" build -o "$DIR/govlog" ./cmd/govlog

pid=
trap '[ -z "$pid" ] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }' EXIT

# count BIN N ROUND: sets IR and COMMITS, the instructions and the group
# commits of one govlogd serving N decisions.
count() {
	local bin=$1 n=$2 round=$3
	local data="$DIR/data-$bin-$n-$round"
	"$DIR/govlog" keygen --name bench.example/log --out "$data" >/dev/null
	# valgrind 3.19 does not know RDTSCP, which the Go runtime uses for
	# its clock unless told not to. valgrind runs one thread at a time;
	# without --fair-sched its choice of the next one can leave the
	# runtime's idle threads spinning in turn, billions of instructions in
	# some runs (claims: 1.07 million a pair in most runs, 3.6 million
	# in one).
	GODEBUG=cpu.rdtscp=off valgrind --tool=cachegrind --cache-sim=no --fair-sched=yes \
		--cachegrind-out-file="$DIR/$bin-$n-$round.out" \
		"$DIR/govlogd-$bin" --listen "$LISTEN" --data "$data" >"$data.log" 2>&1 &
	pid=$!
	wait_ready "http://$LISTEN" "$pid" "govlogd-$bin" "$data.log"
	# shellcheck disable=SC2086 # ARGS is a list of flags
	"$DIR/govlog" bench --url "http://$LISTEN" --json --quiet -n "$n" $ARGS >"$data.json"
	COMMITS=$(curl -sf "http://$LISTEN/metrics" | awk '/^govlog_commit_entries_count/ {print $2}')
	kill -INT "$pid"
	wait "$pid" || true
	pid=
	python3 - "$data.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
if r["verify_failures"] or r["errors"]:
    sys.exit(f"{sys.argv[1]}: {r['verify_failures']} receipts failed, errors {r['errors']}")
EOF
	IR=$(grep -o 'I *refs: *[0-9,]*' "$data.log" | tr -d ', ' | cut -d: -f2)
	rm -rf "$data"
}

echo "round binary instructions/decision entries/commit" | tee "$DIR/results.txt"
for round in $(seq 1 "$ROUNDS"); do
	order="A B"
	[ $((round % 2)) -eq 0 ] && order="B A"
	for bin in $order; do
		count "$bin" "$N1" "$round"
		lo=$IR
		count "$bin" "$N2" "$round"
		echo "$round $bin $(((IR - lo) / (N2 - N1))) $((N2 / COMMITS))" | tee -a "$DIR/results.txt"
	done
done

python3 - "$DIR/results.txt" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]).readlines()[1:]]
per = {b: statistics.median(int(r[2]) for r in rows if r[1] == b) for b in ("A", "B")}
print(f"median instructions a decision: A {per['A']:.0f}, B {per['B']:.0f}, B/A {per['B'] / per['A']:.4f}")
EOF
echo "results and cachegrind files in $DIR"
