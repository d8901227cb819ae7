#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, and the end-to-end lab tests (root: they build a
# router from network namespaces). Usage: bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "tests/run.sh: the lab tests need root (network namespaces, nft); run it as root" >&2
    exit 1
fi
bash tests/setup.sh tests
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# What only the router builds compile (musl: agent/src/thread_name.rs).
rustup target add x86_64-unknown-linux-musl >/dev/null
cargo clippy -p wilife-agent --target x86_64-unknown-linux-musl --locked -- -D warnings
cargo build --locked -p wilife-agent
# Router builds (every target, static musl; cached outside the clone), their .ipk and .apk files and
# size budgets, then each binary under qemu-user. The package tests below use dist/.
bash openwrt-package/build-packages.sh
bash openwrt-package/check-cross.sh
cargo test --workspace --locked
# Every parser that takes outside bytes, fuzzed for a bounded time (FUZZ_SECONDS each, default 20).
bash tests/fuzz.sh
