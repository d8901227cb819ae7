#!/usr/bin/env bash
# The demo: builds the agent, builds a router from network namespaces, shows a connection from the
# simulated internet reaching the Command Center through the agent's forward, prints /api/v1/status,
# tears everything down. Needs root, nft and ip (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "tests/demo.sh: the demo builds a router from network namespaces; run it as root" >&2
    exit 1
fi
bash tests/setup.sh demo
cargo build -q -p wilife-agent
cargo run -q -p wilife-lab --bin demo
