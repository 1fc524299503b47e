#!/usr/bin/env bash
# End-to-end throughput and peak memory of `account-worker run` (release build):
# a mock Kafka cluster (`account-worker dev-kafka`), the useapi simulator with a
# fixed latency, commands produced with kcat, results read with kcat.
# Little's law bounds the throughput at MAX_IN_FLIGHT / latency.
#   scripts/bench-worker.sh [commands=2000] [max_in_flight=8] [latency_ms=100]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-2000}
inflight=${2:-8}
latency=${3:-100}
command -v kcat >/dev/null || { apt-get update -qq && apt-get install -y -qq kcat; }
swift build -c release --product account-worker >/dev/null
bin="$(swift build -c release --show-bin-path)/account-worker"
tmp=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

source scripts/lib/local-stack.sh
start_local_stack "$latency" warning "user:1-bench"

python3 - "$count" > "$tmp/commands" <<'PY'
import json, sys
n = int(sys.argv[1])
for i in range(n):
    email = f"bench{i % max(1, n // 2)}@example.com"
    print(email + "\t" + json.dumps({"id": f"bench-{i}", "email": email, "password": "pw", "maxJobs": 5}))
PY
kcat -b "$brokers" -P -t runway.accounts.commands -K $'\t' < "$tmp/commands"

KAFKA_BROKERS="$brokers" USEAPI_BASE_URL="http://127.0.0.1:$port" MAX_IN_FLIGHT="$inflight" \
  LOG_LEVEL=warning HTTP_PORT=0 WORKER_ID=bench "$bin" run > "$tmp/worker.log" 2>&1 &
worker=$!
pids+=($worker)
started=$(date +%s.%N)
while :; do
  done_count=$(kcat -b "$brokers" -C -t runway.accounts.results -o beginning -e -q 2>/dev/null | wc -l)
  [ "$done_count" -ge "$count" ] && break
  kill -0 "$worker" 2>/dev/null || { echo "worker exited"; cat "$tmp/worker.log"; exit 1; }
  sleep 0.5
done
ended=$(date +%s.%N)
peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$worker/status")
kill -TERM "$worker"; wait "$worker" || true
kcat -b "$brokers" -C -t runway.accounts.results -o beginning -e -q > "$tmp/results"
python3 - "$tmp/results" "$count" "$inflight" "$latency" "$started" "$ended" "$peak_kib" <<'PY'
import json, sys
from datetime import datetime
path, n, inflight, latency, started, ended, peak = sys.argv[1:]
rows = [json.loads(line) for line in open(path) if line.strip()]
stamps = sorted(datetime.fromisoformat(r["processedAt"].replace("Z", "+00:00")).timestamp() for r in rows)
ok = sum(1 for r in rows if r["status"] == "ok")
span = stamps[-1] - stamps[0]
print(f"commands: {n}, results: {len(rows)} ({ok} ok), MAX_IN_FLIGHT={inflight}, simulated latency {latency} ms")
print(f"throughput (first to last result): {(len(rows) - 1) / span:.1f} commands/s; Little's law bound: {int(inflight) * 1000 / int(latency):.0f}/s")
print(f"wall time from worker start to last result: {float(ended) - float(started):.1f} s (includes group join)")
print(f"worker peak RSS (VmHWM): {int(peak) / 1024:.1f} MiB")
PY
