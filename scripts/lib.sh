# Sourced by the scripts of this directory.

# wait_ready URL PID NAME LOG: wait until URL/readyz answers; fail when
# the process PID (NAME, its output in LOG) exits first, or after 60 s.
wait_ready() {
	local url=$1 pid=$2 name=$3 log=$4
	for _ in $(seq 1 600); do
		curl -sf "$url/readyz" >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || { echo "$name did not start:" >&2; cat "$log" >&2; exit 1; }
		sleep 0.1
	done
	echo "$name did not answer $url/readyz within 60 s" >&2
	exit 1
}
