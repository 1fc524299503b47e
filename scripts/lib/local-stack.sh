# Shared by the bench and chaos scripts: a mock Kafka cluster and the useapi
# simulator from the release binary, on free loopback ports.
# Needs: $bin (the account-worker binary), $tmp (a scratch folder), and a
# `pids` array that the caller's cleanup kills.
# Sets: $brokers, $port; exports USEAPI_TOKEN.
#   start_local_stack LATENCY_MS LOG_LEVEL TOKEN
start_local_stack() {
  # $tmp/kafka-control: a named pipe for broker faults (see `account-worker dev-kafka --help`).
  "$bin" dev-kafka --partitions 6 --bootstrap-file "$tmp/bootstrap" --control-fifo "$tmp/kafka-control" >/dev/null &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$tmp/bootstrap" ] && break; sleep 0.1; done
  brokers=$(cat "$tmp/bootstrap")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  export USEAPI_TOKEN="$3"
  "$bin" simulate-useapi --port "$port" --latency-ms "$1" --log-level "$2" &
  pids+=($!)
}
