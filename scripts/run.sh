#!/bin/sh
# Runs the generator and the processor together in one terminal, for
# `make run`. Ctrl+C reaches both programs directly (they share the
# terminal's process group) and each shuts down gracefully; this script only
# waits for them. SIGTERM to the script is passed on, processor first.
set -u
gen=$1 proc=$2 gen_addr=$3 api_addr=$4 interval=$5

case $gen_addr in
  :*) ws_host=localhost$gen_addr ;;
  *) ws_host=$gen_addr ;;
esac

"$gen" --url "$gen_addr" --interval-ms "$interval" &
gen_pid=$!
"$proc" --urls "ws://$ws_host/ws/logs" --http-addr "$api_addr" &
proc_pid=$!

finish() {
  wait "$proc_pid"; proc_status=$?
  wait "$gen_pid"
  exit "$proc_status"
}
terminate() {
  trap '' INT TERM
  kill -TERM "$proc_pid" 2>/dev/null
  wait "$proc_pid"; proc_status=$?
  kill -TERM "$gen_pid" 2>/dev/null
  wait "$gen_pid"
  exit "$proc_status"
}
trap 'trap "" INT; finish' INT
trap terminate TERM

echo "generator on $gen_addr, processor API on $api_addr; try: curl http://localhost:${api_addr##*:}/stats (Ctrl+C stops both)" >&2
# If either exits on its own (a port in use, say), stop the other.
while kill -0 "$gen_pid" 2>/dev/null && kill -0 "$proc_pid" 2>/dev/null; do
  sleep 1 &
  wait $!
done
terminate
