#!/usr/bin/env bash
# Measures the useapi simulator's throughput on loopback at zero latency:
# a release build of `account-worker simulate-useapi`, driven by wrk with
# POST upserts spread over 1000 emails. Prints wrk's figures.
#   scripts/bench-simulator.sh [duration=10s] [connections=64]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
connections=${2:-64}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
swift build -c release --product account-worker >/dev/null
bin="$(swift build -c release --show-bin-path)/account-worker"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export USEAPI_TOKEN="user:1-bench"
"$bin" simulate-useapi --port "$port" --log-level warning &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$script"' EXIT
script=$(mktemp --suffix=.lua)
cat > "$script" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  local email = "bench" .. (counter % 1000) .. "@example.com"
  local body = '{"email":"' .. email .. '","password":"pw","maxJobs":5}'
  return wrk.format("POST", "/v1/runwayml/accounts/" .. email,
    {["Authorization"] = "Bearer user:1-bench", ["Content-Type"] = "application/json"}, body)
end
LUA
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/_admin/journal" && break; sleep 0.1; done
echo "simulator: POST upserts, zero latency, $connections connections, 2 wrk threads, $duration"
wrk -t2 -c"$connections" -d"$duration" -s "$script" "http://127.0.0.1:$port"
