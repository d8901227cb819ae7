#!/usr/bin/env bash
# Benchmarks (figures for the notes, not pass/fail tests): release binary sizes (opt-level z vs s,
# x86_64 musl with stable, and mipsel as build-packages.sh builds it), the apply time against bare nft, the
# agent's idle RSS, the IGD against miniupnpd, HTTP attacks, and the data path (iperf3). As root.
set -euo pipefail
cd "$(dirname "$0")/../.."
rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1
size_of() { stat -c %s "$1"; }
for level in s z; do
    CARGO_PROFILE_RELEASE_OPT_LEVEL=$level cargo build -q --release --locked -p wilife-agent \
        --target x86_64-unknown-linux-musl --target-dir target/size-$level
    bin=target/size-$level/x86_64-unknown-linux-musl/release/wilife-agent
    printf 'opt-level %s: x86_64-musl stripped %8d bytes, gzip -9 %8d bytes\n' "$level" \
        "$(size_of $bin)" "$(gzip -9c $bin | wc -c)"
done
# The router build (mipsel, the tightest budget): opt-level s vs z with the release options of
# build-packages.sh, each in its own target directory outside the clone; budgets off (figures only).
# Its table's second line is the first mipsel arch name (every arch name gets the same binary).
for level in s z; do
    CARGO_PROFILE_RELEASE_OPT_LEVEL=$level BUDGET_BIN=99999999 BUDGET_IPK=99999999 \
        WILIFE_CROSS_DIR=/var/tmp/wilife-cross-$level \
        bash openwrt-package/build-packages.sh mipsel-unknown-linux-musl 2>/dev/null | sed -n 2p \
        | awk -v l="$level" '{ printf "opt-level %s: mipsel stripped %8d bytes, gzip -9 %8d bytes, ipk %8d bytes, apk %8d bytes\n", l, $3, $4, $5, $6 }'
done
cargo build -q --release --locked -p wilife-lab --bin bench_apply
WILIFE_AGENT_BIN=$PWD/target/size-z/x86_64-unknown-linux-musl/release/wilife-agent ./target/release/bench_apply
# The IGD side by side with Debian's miniupnpd-nftables (tests/setup.sh installs it without starting
# its service).
bash tests/setup.sh tests
cargo build -q --release --locked -p wilife-lab --bin bench_upnp
WILIFE_AGENT_BIN=$PWD/target/size-z/x86_64-unknown-linux-musl/release/wilife-agent ./target/release/bench_upnp
# The HTTP attacks of issue 13 against the release build, one after the other, while upnpc maps a port.
cargo build -q --release --locked -p wilife-lab --bin bench_attack
WILIFE_AGENT_BIN=$PWD/target/size-z/x86_64-unknown-linux-musl/release/wilife-agent ./target/release/bench_attack
# A hostile SOAP body (issue 27): 2600 attributes against a plain request, same run.
cargo build -q --release --locked -p wilife-lab --bin bench_soap
WILIFE_AGENT_BIN=$PWD/target/size-z/x86_64-unknown-linux-musl/release/wilife-agent ./target/release/bench_soap
# The Command Center's events while 28 dead callbacks are subscribed (issue 27).
cargo build -q --release --locked -p wilife-lab --bin bench_gena
WILIFE_AGENT_BIN=$PWD/target/size-z/x86_64-unknown-linux-musl/release/wilife-agent ./target/release/bench_gena
# 200,000 forged MACs in the bridge FDB (issue 27): RSS, Add latency, a WAN change.
cargo build -q --release --locked -p wilife-lab --bin bench_fdb
WILIFE_AGENT_BIN=$PWD/target/size-z/x86_64-unknown-linux-musl/release/wilife-agent ./target/release/bench_fdb
# The data path (issue 15): iperf3 streams through the lab router with fw4 alone and with our tables.
# Debian's iperf3 asks whether to run a daemon (the default, kept here: no), and starts nothing.
if ! command -v iperf3 >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 </dev/null >/dev/null \
        || { echo "bench: cannot install iperf3" >&2; exit 1; }
fi
cargo build -q --release --locked -p wilife-lab --bin bench_datapath
WILIFE_AGENT_BIN=$PWD/target/size-z/x86_64-unknown-linux-musl/release/wilife-agent ./target/release/bench_datapath
# An idle agent (issue 15): CPU time including reaped children and nft processes started over
# IDLE_SECONDS (default 600; the issue's ten minutes).
cargo build -q --release --locked -p wilife-lab --bin bench_idle
WILIFE_AGENT_BIN=$PWD/target/size-z/x86_64-unknown-linux-musl/release/wilife-agent ./target/release/bench_idle
