#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, with AddressSanitizer) of the parsers of
# outside input that compile on their own: the strict JSON parser and the
# Retry-After parsers. Each target runs FUZZ_SECONDS (default 20) and the
# script reports executions and crashes; a crash exits 1 and leaves its input
# in .build/fuzz/<target>/crash-* (make it a regression test).
# The command decoder and useapi's answer decoder are fuzzed in-process by the
# mutation fuzz tests (Tests/TestSupport/Fuzzer.swift, `swift test --filter fuzz`).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}
out=.build/fuzz
mkdir -p "$out/bin"

build() { # name, sources...
  local name=$1; shift
  swiftc -parse-as-library -sanitize=fuzzer,address -O -module-name "$name" "$@" -o "$out/bin/$name" 2> "$out/$name.build.log" \
    || { cat "$out/$name.build.log"; exit 1; }
}

run() { # name, extra libFuzzer flag, seed inputs...
  local name=$1 flag=$2; shift 2
  local corpus="$out/$name/corpus"
  mkdir -p "$corpus"
  local index=0
  for seed in "$@"; do
    printf '%s' "$seed" > "$corpus/seed-$index"
    index=$((index + 1))
  done
  local log="$out/$name.log"
  # -detect_leaks=0 must reach LeakSanitizer's check at exit too, not only libFuzzer's.
  local leaks=1
  [ "$flag" = "-detect_leaks=0" ] && leaks=0
  if (cd "$out/$name" && ASAN_OPTIONS="detect_leaks=$leaks" "../bin/$name" -max_total_time="$seconds" -max_len=4096 -timeout=5 -rss_limit_mb=2048 $flag corpus) > "$log" 2>&1; then
    runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' || echo "?")
    echo "fuzz $name (libFuzzer): $runs executions in ${seconds} s, 0 crashes"
  else
    echo "fuzz $name (libFuzzer): CRASH; input saved under $out/$name/:"
    tail -30 "$log"
    ls "$out/$name"/crash-* "$out/$name"/timeout-* "$out/$name"/oom-* 2>/dev/null || true
    exit 1
  fi
}

build JSONParserFuzz Sources/StrictJSON/*.swift Fuzz/JSONParserTarget.swift
build RetryAfterFuzz Sources/UseAPI/RetryAfter.swift Sources/UseAPI/UntrustedDate.swift Fuzz/RetryAfterTarget.swift

run JSONParserFuzz -detect_leaks=1 \
  '{"id":"c-1","email":"alice@example.com","password":"pw","maxJobs":5,"note":1e400}' \
  '{"error":"Too busy","errorDetails":{"a":[1,2.5,"\u00e9\ud83d\ude00"]},"retryAfter":"PT12S","code":429}' \
  '{"email":"a@b.io","maxJobs":3,"jwt":{"exp":1e300,"iat":-1,"id":99999999999999999999,"token":"t"}}'
# Foundation's DateFormatter keeps character-set caches LeakSanitizer reports
# as leaks (384 bytes, inside libFoundation): leak checks are off for this one.
run RetryAfterFuzz -detect_leaks=0 '120' '1e16' 'Wed, 21 Oct 2015 07:28:00 GMT' 'Sun Nov  6 08:49:37 1994' \
  'PT99999999999999999999S' 'P1DT2H3M4.5S' '2024-11-22T09:10:28.500Z'
