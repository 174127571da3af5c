#!/usr/bin/env bash
# 12 nodes in network namespaces (deploy/lab.sh with N=12): the time from healing a partition to
# identical heads on every node, measured by the lab itself ("second partition healed on clean
# links"). Needs root.   bench/federation_partition.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-12} exec deploy/lab.sh "${1:-build-rel}"
