#!/usr/bin/env bash
# Benchmarks (figures for the notes, not pass/fail tests): release binary sizes (opt-level z vs s,
# x86_64 musl, stripped), the apply time against bare nft, and the agent's idle RSS. As root.
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
cargo build -q --release --locked -p wilife-lab --bin bench_apply
WILIFE_AGENT_BIN=$PWD/target/size-z/x86_64-unknown-linux-musl/release/wilife-agent ./target/release/bench_apply
