#!/usr/bin/env bash
# Search against SQLite FTS5: a corpus of Dutch cases generated from the demo data's texts (which
# come from the seed documents) is indexed by Olievlek and by FTS5 (unicode61, remove_diacritics
# 2); the same queries then run against both in one process, side by side. Prints per-query
# times, p50/p99 of each, the ratio of total times, build times and index sizes.
#
#   bench/search.sh [BUILD_DIR]        (RECORDS=100000 ROUNDS=10 by default; needs libsqlite3-dev)
#   SEARCH_BENCH_PROFILE="leerlingen " bench/search.sh build-rel   runs one query many times (perf)
#     (SEARCH_BENCH_FILTERS="sector=vo&phase=adoptie,implementatie" adds filters to it)
#   SEARCH_BENCH_DATA=/tmp/corpus ...   keeps the built corpus there and uses it again next time
#   SEARCH_BENCH_DUMP=answers.txt ...   writes every answer without timings, to compare two builds
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-rel}
RECORDS=${RECORDS:-100000}
ROUNDS=${ROUNDS:-10}
cmake --build "$BUILD" -j2 --target search_bench >/dev/null
exec "$BUILD/search_bench" "$RECORDS" "$ROUNDS"
