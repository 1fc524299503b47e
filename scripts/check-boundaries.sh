#!/usr/bin/env bash
# The module boundaries, checked: only Sources/Kafka/RDKafka/ may import the C
# module, always with `internal import` (so no public declaration can expose
# a C type); every target imports only what Package.swift declares for it
# (swift build --explicit-target-dependency-import-check error, run by
# `make test`); MemberImportVisibility (Package.swift) stops imports leaking
# across files.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
while IFS= read -r file; do
  case "$file" in
    Sources/Kafka/RDKafka/*) ;;
    *) echo "boundary: $file imports CRdKafka; only Sources/Kafka/RDKafka/ may"; status=1 ;;
  esac
done < <(grep -rlE '^[[:space:]]*(@_implementationOnly |internal |public |package )?import CRdKafka' Sources Tests --include='*.swift' || true)
while IFS= read -r line; do
  echo "boundary: ${line%%:*} imports CRdKafka without 'internal'"; status=1
done < <(grep -rnE '^[[:space:]]*(public |package )?import CRdKafka' Sources --include='*.swift' || true)
[ "$status" = 0 ] && echo "module boundaries: only Sources/Kafka/RDKafka/ imports CRdKafka, internally"
exit "$status"
