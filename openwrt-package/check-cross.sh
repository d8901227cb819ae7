#!/usr/bin/env bash
# Runs every cross-built binary in dist/bin under qemu-user (Debian's qemu-user-static), on every CPU
# model arches.sh names for it (the oldest and most limited cores of the routers it is published for):
# --version, the built-in selftest (the pure core against known answers: byte order, word size,
# soft-float), the example config through `check`, and `print-ruleset`, whose text must equal the
# native build's.
# Usage: openwrt-package/check-cross.sh   (after build-packages.sh)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=arches.sh
. "$root/openwrt-package/arches.sh"
bins="$root/dist/bin"
example="$root/openwrt-package/wilife-agent/files/wilife.config"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A config with cameras, a Command Center and every allowance: the render exercises all of it.
cat > "$work/full.conf" <<'CONF'
config agent 'main'
	option wan_device 'eth1'
	list lan_device 'br-lan'
config command_center
	option ip '192.168.1.10'
config camera
	option mac '00:11:22:33:44:66'
	option ip '192.168.1.30'
config direct 'direct'
	option custom_port '8443'
config outbound 'outbound'
	option remote_client '1'
CONF

native="$bins/wilife-agent-x86_64-unknown-linux-musl"
[ -x "$native" ] || { echo "check-cross.sh: $native missing: run openwrt-package/build-packages.sh" >&2; exit 1; }
"$native" print-ruleset --config "$work/full.conf" --text > "$work/native.txt"
failed=0
count=0
for target in $all_targets; do
    bin="$bins/wilife-agent-$target"
    [ -x "$bin" ] || { echo "FAIL $target: $bin is missing"; failed=1; continue; }
    runner=$(runner_of "$target")
    if [ -n "$runner" ] && ! command -v "$runner" >/dev/null; then
        echo "FAIL $target: $runner is not installed (apt-get install qemu-user-static)"; failed=1; continue
    fi
    for cpu in $(cpus_of "$target"); do
        count=$((count + 1))
        where="$target on $cpu"
        run() {
            if [ -z "$runner" ]; then "$bin" "$@"
            elif [ "$cpu" = - ]; then $runner "$bin" "$@"
            else $runner -cpu "$cpu" "$bin" "$@"; fi
        }
        version=$(run --version) || { echo "FAIL $where: --version"; failed=1; continue; }
        selftest=$(run selftest 2>&1) || { echo "FAIL $where: $selftest"; failed=1; continue; }
        run check --config "$example" --wan-device eth1 --lan-device br-lan > /dev/null \
            || { echo "FAIL $where: check of the example config"; failed=1; continue; }
        run print-ruleset --config "$work/full.conf" --text > "$work/$target.txt" \
            || { echo "FAIL $where: print-ruleset"; failed=1; continue; }
        if ! cmp -s "$work/native.txt" "$work/$target.txt"; then
            echo "FAIL $where: print-ruleset differs from the native build:"
            diff "$work/native.txt" "$work/$target.txt" | head -20
            failed=1; continue
        fi
        echo "ok   $where: $version; $selftest; check and print-ruleset agree"
    done
done
[ "$count" -gt 0 ] || { echo "check-cross.sh: nothing was run" >&2; exit 1; }
exit $failed
