#!/usr/bin/env bash
# `promtool check metrics` on a live /metrics: the debug binary's
# `account-worker run` against `dev-kafka` and `simulate-useapi`, all on free
# loopback ports, after a few commands (an ok, a 503 then ok, a validation
# error, undecodable bytes), so every family has samples. Also checks that the
# families operators rely on are there (process_*, lag, results at 0 from
# start-up). Everything is stopped on exit; each wait is bounded.
#   scripts/check-metrics.sh            (SWIFT overrides the swift command)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null || { echo "promtool missing (Debian package prometheus; make deps)" >&2; exit 1; }
swift=${SWIFT:-swift}
bin="$($swift build --show-bin-path)/account-worker"
[ -x "$bin" ] || { echo "build the debug binary first ($swift build)" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
# Each process runs under `timeout` (the pid kept): SIGTERM is passed on, and
# the worker gets a few seconds to leave its group before SIGKILL.
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=no
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=yes; done
    [ "$alive" = no ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fail() { echo "check-metrics: $*" >&2; for log in "$tmp"/*.log; do echo "--- $log" >&2; tail -20 "$log" >&2; done; exit 1; }

topics=runway.accounts.commands,runway.accounts.results,runway.accounts.dlq,runway.accounts.status
timeout -k 5 120 "$bin" dev-kafka --partitions 2 --topics "$topics" --bootstrap-file "$tmp/bootstrap" >"$tmp/kafka.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/bootstrap" ] && break; sleep 0.1; done
[ -s "$tmp/bootstrap" ] || fail "dev-kafka did not start"
brokers=$(cat "$tmp/bootstrap")
useapi_port=$(free_port)
export USEAPI_TOKEN="user:1-check-metrics"
timeout -k 5 120 "$bin" simulate-useapi --port "$useapi_port" --log-level error >"$tmp/useapi.log" 2>&1 &
pids+=($!)
http_port=$(free_port)
KAFKA_BROKERS="$brokers" USEAPI_BASE_URL="http://127.0.0.1:$useapi_port" HTTP_PORT="$http_port" LOG_LEVEL=warning LOG_FORMAT=text \
  WORKER_ID=check-metrics SHUTDOWN_TIMEOUT_MS=3000 KAFKA_CONFIG_TOPIC_METADATA_REFRESH_INTERVAL_MS=1000 timeout -k 5 120 "$bin" run >"$tmp/worker.log" 2>&1 &
pids+=($!)
metrics="http://127.0.0.1:$http_port/metrics"

ready=no
for _ in $(seq 300); do
  if curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$http_port/readyz"; then ready=yes; break; fi
  sleep 0.1
done
[ "$ready" = yes ] || fail "the worker never became ready"

# Before any command: the series alerts need exist at 0.
curl -fsS --max-time 5 "$metrics" >"$tmp/start.txt"
grep -q '^account_worker_results_total{status="ok",.*} 0$' "$tmp/start.txt" || fail "no ok results series at 0 at start-up"
grep -q '^account_worker_results_total{status="error",.*} 0$' "$tmp/start.txt" || fail "no error results series at 0 at start-up"
for name in publish_failures_total offset_commit_failures_total dlq_messages_total; do
  grep -q "^account_worker_$name 0$" "$tmp/start.txt" || fail "account_worker_$name is not at 0 at start-up"
done

# One 503 before the answer (the simulator's faults), then a few commands.
curl -fsS -o /dev/null --max-time 5 -X PUT --data '[{"emailPrefix":"flaky","failFirst":1}]' "http://127.0.0.1:$useapi_port/_admin/faults" \
  || fail "cannot set the simulator's faults"
printf '%s\n' \
  '{"id":"cm-1","email":"ok@example.com","password":"pw-1","maxJobs":2}' \
  '{"id":"cm-2","email":"flaky@example.com","password":"pw-2","maxJobs":2}' \
  '{"id":"cm-3","email":"not-an-email","password":"pw-3","maxJobs":2}' \
  | KAFKA_BROKERS="$brokers" timeout 30 "$bin" send --jsonl --no-validate >/dev/null 2>"$tmp/send.log" || fail "send failed"
printf 'not json' | timeout 30 kcat -P -b "$brokers" -t runway.accounts.commands -k junk 2>/dev/null || true

done_=no
for _ in $(seq 300); do
  curl -fs --max-time 5 "$metrics" >"$tmp/metrics.txt" || true
  results=$(awk '/^account_worker_results_total/ { sum += $NF } END { print sum + 0 }' "$tmp/metrics.txt")
  if [ "$results" -ge 3 ] && grep -q '^account_worker_consumer_lag{' "$tmp/metrics.txt"; then done_=yes; break; fi
  sleep 0.1
done
[ "$done_" = yes ] || fail "results or lag never showed up in /metrics"

for name in process_cpu_seconds_total process_resident_memory_bytes process_virtual_memory_bytes process_open_fds process_max_fds \
  process_start_time_seconds account_worker_consumer_lag 'account_worker_useapi_calls_total{outcome="503"}'; do
  grep -qF "$name" "$tmp/metrics.txt" || fail "$name missing from /metrics"
done
echo "promtool check metrics on $(grep -c -v '^#' "$tmp/metrics.txt") samples of a live /metrics:"
promtool check metrics <"$tmp/metrics.txt"
[ -z "${CHECK_METRICS_KEEP:-}" ] || cp "$tmp/metrics.txt" "$CHECK_METRICS_KEEP"
echo "promtool check metrics: ok"
