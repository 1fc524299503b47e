#!/usr/bin/env bash
# Chaos run: three `account-worker run` replicas against a mock Kafka cluster
# and the useapi simulator, while workers are killed (SIGKILL), stopped
# (SIGTERM) and restarted, useapi has outages, the Kafka broker goes down and
# up, and produce requests fail transiently. Checks that every command gets an
# ok result (the faults are transient: the worker must get every command
# through them); error results are counted apart, never as results. Checks
# per-account order: no result for an email comes before a result for each of
# its earlier commands. Prints duplicates (allowed: at-least-once) per kill.
# Exits 1 if any command has no ok result, or on an order violation.
#   scripts/chaos.sh [commands=2000] [chaos_seconds=30]   (about 60 commands/s get through)
# CHAOS_CONFIGURATION=debug uses the debug build (`make test` runs a short
# chaos on the binary it has just built); SWIFT overrides the swift command.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-2000}
chaos_seconds=${2:-30}
configuration=${CHAOS_CONFIGURATION:-release}
swift=${SWIFT:-swift}
command -v kcat >/dev/null || { apt-get update -qq && apt-get install -y -qq kcat; }
$swift build -c "$configuration" --product account-worker >/dev/null
bin="$($swift build -c "$configuration" --show-bin-path)/account-worker"
tmp=$(mktemp -d)
declare -A workers
pids=()
cleanup() {
  for pid in "${workers[@]}" "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

source scripts/lib/local-stack.sh
start_local_stack 200 error "user:1-chaos"

start_worker() {
  KAFKA_BROKERS="$brokers" USEAPI_BASE_URL="http://127.0.0.1:$port" HTTP_PORT=0 LOG_LEVEL=warning LOG_FORMAT=text \
    MAX_IN_FLIGHT=4 SHUTDOWN_TIMEOUT_MS=5000 BREAKER_THRESHOLD=5 WORKER_ID="$1" \
    KAFKA_CONFIG_SESSION_TIMEOUT_MS=6000 KAFKA_CONFIG_HEARTBEAT_INTERVAL_MS=500 \
    "$bin" run >>"$tmp/$1.log" 2>&1 &
  workers[$1]=$!
}
faults() {
  curl -s -o /dev/null -X PUT --data "$1" "http://127.0.0.1:$port/_admin/faults"
}
kafka_fault() {
  timeout 5 bash -c "echo '$1' > '$tmp/kafka-control'" || echo "  (kafka control pipe did not answer)"
}

python3 - "$count" > "$tmp/commands" <<'PY'
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"id": f"chaos-{i}", "email": f"chaos{i % 50}@example.com", "password": "pw", "maxJobs": i % 10 + 1}))
PY
for name in w1 w2 w3; do start_worker "$name"; done
KAFKA_BROKERS="$brokers" "$bin" send --jsonl < "$tmp/commands" >/dev/null

echo "chaos for ${chaos_seconds}s on $count commands, 3 workers"
end=$((SECONDS + chaos_seconds))
actions=0
kills=0
while [ $SECONDS -lt $end ]; do
  sleep $((RANDOM % 3 + 1))
  name="w$((RANDOM % 3 + 1))"
  case $((RANDOM % 6)) in
    0) echo "  SIGKILL $name"; kills=$((kills + 1)); kill -9 "${workers[$name]}" 2>/dev/null || true; wait "${workers[$name]}" 2>/dev/null || true; start_worker "$name" ;;
    1) echo "  SIGTERM $name"; kills=$((kills + 1)); kill -TERM "${workers[$name]}" 2>/dev/null || true; wait "${workers[$name]}" 2>/dev/null || true; start_worker "$name" ;;
    4) echo "  Kafka broker down for 3s"; kafka_fault "broker-down 1"; sleep 3; kafka_fault "broker-up 1" ;;
    5) echo "  5 produce requests fail (NOT_LEADER_FOR_PARTITION)"; kafka_fault "produce-errors 5 not-leader" ;;
    2) echo "  useapi outage (503) for 2s"; faults '[{"serverErrorRate":1}]'; sleep 2; faults '[{"latencyMs":200}]' ;;
    3) echo "  useapi hangs and drops for 2s"; faults '[{"hangRate":0.3,"hangMs":3000,"dropRate":0.3,"latencyMs":200}]'; sleep 2; faults '[{"latencyMs":200}]' ;;
  esac
  actions=$((actions + 1))
done
faults '[{"latencyMs":200}]'
kafka_fault "broker-up 1"

# A killed member holds its partitions until its session times out (6 s here),
# and every eager rebalance waits for the slowest member: recovery takes a while.
# Wait until every command has a result of either status (an error result is
# final: waiting longer for an ok one would only reach the deadline).
deadline=$((SECONDS + 300))
while :; do
  KAFKA_BROKERS="$brokers" "$bin" results --from beginning --format json --exit-at-end > "$tmp/results"
  answered=$(python3 -c 'import json,sys; print(len({json.loads(l)["commandId"] for l in open(sys.argv[1]) if l.strip()}))' "$tmp/results")
  [ "$answered" -ge "$count" ] && break
  [ $SECONDS -ge $deadline ] && break
  sleep 2
done
set +e
python3 - "$tmp/results" "$count" "$actions" "$kills" <<'PY'
import json, sys
from collections import Counter, defaultdict
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
count, actions, kills = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
expected = {f"chaos-{i}" for i in range(count)}
ok = Counter(r["commandId"] for r in rows if r.get("status") == "ok")
errors = [r for r in rows if r.get("status") != "ok"]
answered = {r["commandId"] for r in rows}
lost = expected - answered
failed = (answered & expected) - set(ok)
print(f"{actions} chaos actions; {count} commands; {len(expected & set(ok))} with an ok result; "
      f"{len(lost)} lost (no result); {len(failed)} with only error results; "
      f"{sum(c - 1 for c in ok.values())} extra ok reports (at-least-once redeliveries)")
print(f"{len(errors)} error results (not counted as results):",
      dict(Counter(f'{r.get("code")} {r.get("stage")}' for r in errors)))
for r in errors[:5]:
    print("  e.g.", r.get("commandId"), r.get("code"), r.get("stage"), str(r.get("error"))[:120])
unknown = set(ok) - expected
if unknown:
    print(f"{len(unknown)} ok results for commands never sent, e.g. {sorted(unknown)[:3]}")
# Per-account order: commands chaos-i and chaos-j (i < j, same i % 50) are for
# one email, in that offset order; a result for j before any result for i skips ahead.
seen = defaultdict(set)
violations = 0
for r in rows:
    cid = r.get("commandId") or ""
    if not cid.startswith("chaos-"):
        continue
    index = int(cid.split("-")[1])
    account = index % 50
    if any(j not in seen[account] for j in range(account, index, 50)):
        violations += 1
        if violations <= 3:
            print(f"  order violation: {cid} reported before an earlier command of {r.get('email')}")
    seen[account].add(index)
extra = sum(c - 1 for c in ok.values())
print(f"order violations: {violations}; kills: {kills}; duplicates per kill: {extra / kills if kills else 0:.1f}")
sys.exit(1 if lost or failed or unknown or violations else 0)
PY
status=$?
if [ $status -ne 0 ]; then
  for name in w1 w2 w3; do echo "--- $name (last lines)"; tail -n 15 "$tmp/$name.log"; done
  ps aux | grep "[a]ccount-worker run" | head
fi
exit $status
