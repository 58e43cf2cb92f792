#!/bin/sh
# run-cluster.sh: three shipote daemons on loopback joined as one cluster
# (membership by heartbeats: --peers), a workspace and a fan-out pipeline
# placed on each, and a cluster-wide `ws ls` asked of one member.
# Everything it starts is stopped at the end, whatever happens.
#
#   sh examples/cluster/run-cluster.sh [path/to/shipote]
set -eu
BIN=${1:-bin/shipote}
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d "${TMPDIR:-/tmp}/shipote-cluster.XXXXXX")
BASE=${SHIPOTE_CLUSTER_PORT:-17310}
PIDS=""
cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$p" 2>/dev/null || true
	done
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

addr() { echo "127.0.0.1:$((BASE + 2 * $1))"; }
printf 'cluster-token-%s\n' "$$" > "$DIR/token"
chmod 600 "$DIR/token"

for i in 0 1 2; do
	node=$(echo abc | cut -c$((i + 1)))
	peers=""
	for j in 0 1 2; do
		[ "$j" = "$i" ] && continue
		peers="${peers:+$peers,}$(addr $j)"
	done
	mkdir -p "$DIR/$node"
	"$BIN" --socket "$DIR/$node/sock" daemon --state "$DIR/$node/state.json" --limits none \
		--cluster demo --node "$node" --advertise "$(addr $i)" --peers "$peers" \
		--cluster-token-file "$DIR/token" --log-format json >"$DIR/$node/log" 2>&1 &
	PIDS="$PIDS $!"
	echo "member $node: pid $! advertise $(addr $i) socket $DIR/$node/sock"
done

sh_a() { "$BIN" --socket "$DIR/a/sock" "$@"; }
i=0
until sh_a ws ls >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ]; then echo "member a did not start:"; cat "$DIR/a/log"; exit 1; fi
	sleep 0.1
done
for node in b c; do
	i=0
	until "$BIN" --socket "$DIR/$node/sock" ws ls >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then echo "member $node did not start:"; cat "$DIR/$node/log"; exit 1; fi
		sleep 0.1
	done
done

echo
echo "placing a workspace and a fan-out pipeline on each member, all asked of member a:"
for node in a b c; do
	ws=$(sh_a ws create --label "web-$node" --node "$node")
	run=$(sh_a pipe run "web-$node" -f "$HERE/fanout.yaml")
	echo "  web-$node on $node: workspace $ws, pipeline $run"
done
echo "and one placed by memory headroom:"
echo "  $(sh_a ws create --label placed)"

echo
echo "shipote ws ls (asked of member a):"
sh_a ws ls
echo
echo "shipote pipe ls (asked of member b):"
"$BIN" --socket "$DIR/b/sock" pipe ls
