#!/usr/bin/env bash
# Fuzzes every parser that takes outside bytes (agent/fuzz: UCI + render, SSDP, HTTP head, SOAP, GENA
# headers, the state file, rpcd arguments, netifd's dump and DHCP leases, the upstream gateway's PCP,
# NAT-PMP and IGD answers), each for FUZZ_SECONDS (default 20) from the seed corpus in agent/fuzz/corpus. New
# inputs go to a scratch directory, so the tree stays as it is. A crash fails the run and leaves its
# input in agent/fuzz/artifacts/.
# Usage: bash tests/fuzz.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
. openwrt-package/toolchain.env
seconds=${FUZZ_SECONDS:-20}
rustup toolchain list | grep -q "^$NIGHTLY" || rustup toolchain install --profile minimal "$NIGHTLY"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz --version "$CARGO_FUZZ"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd agent
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo "+$NIGHTLY" fuzz list)
cargo "+$NIGHTLY" fuzz build --release
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t"
    out=$(cargo "+$NIGHTLY" fuzz run --release "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 2>&1) || {
        echo "$out" | tail -40
        echo "fuzz: $t FAILED (input in agent/fuzz/artifacts/$t/)" >&2
        exit 1
    }
    runs=$(echo "$out" | sed -n 's/^stat::number_of_executed_units: *//p' | tail -1)
    echo "fuzz: $t ok, ${runs:-?} runs in ${seconds} s"
done
