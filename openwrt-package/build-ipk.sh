#!/usr/bin/env bash
# Builds wilife-agent for OpenWrt routers and assembles installable .ipk files into dist/.
#
#   openwrt-package/build-ipk.sh [RUST_TARGET...]     (all five targets when none is given)
#
# Static musl binaries, built with the pinned nightly (toolchain.env), -Zbuild-std and the
# immediate-abort panic strategy (the size budget needs it), linked by zig through cargo-zigbuild.
# Installs what it lacks (the nightly with rust-src, ziglang and cargo-zigbuild from PyPI). The target
# directory lives outside the clone (WILIFE_CROSS_DIR) so repeated runs reuse it.
# Fails when a binary or an .ipk grows past its budget (BUDGET_BIN, BUDGET_IPK bytes).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=toolchain.env
. "$here/toolchain.env"

all_targets="x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf mipsel-unknown-linux-musl mips-unknown-linux-musl"
targets="${*:-$all_targets}"
cross_dir="${WILIFE_CROSS_DIR:-/var/tmp/wilife-cross}"
dist="$root/dist"
budget_bin="${BUDGET_BIN:-1200000}"
budget_ipk="${BUDGET_IPK:-600000}"
pkg_dir="$here/wilife-agent"
version=$(sed -n 's/^PKG_VERSION:=//p' "$pkg_dir/Makefile")
release=$(sed -n 's/^PKG_RELEASE:=//p' "$pkg_dir/Makefile")

# OpenWrt package architectures each binary serves (a static binary runs on every one listed).
archs_of() {
    case "$1" in
        x86_64-unknown-linux-musl) echo "x86_64" ;;
        aarch64-unknown-linux-musl) echo "aarch64_cortex-a53 aarch64_generic" ;;
        armv7-unknown-linux-musleabihf) echo "arm_cortex-a7_neon-vfpv4 arm_cortex-a9_vfpv3-d16 arm_cortex-a7 arm_cortex-a9" ;;
        mipsel-unknown-linux-musl) echo "mipsel_24kc" ;;
        mips-unknown-linux-musl) echo "mips_24kc" ;;
        *) echo "build-ipk.sh: unknown target $1 (known: $all_targets)" >&2; return 1 ;;
    esac
}

# Extra code-generation flags per target.
flags_of() {
    case "$1" in
        # Cortex-A9 parts with VFPv3-D16 (mvebu and others) have only 16 double registers.
        armv7-*) echo "-C target-feature=-d32" ;;
        *) echo "" ;;
    esac
}

ensure_tools() {
    if ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1 \
        || ! rustup component list --toolchain "$NIGHTLY" --installed | grep -q '^rust-src'; then
        rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src
    fi
    python3 -c 'import ziglang' 2>/dev/null || python3 -m pip install -q "ziglang==$ZIGLANG"
    command -v cargo-zigbuild >/dev/null || python3 -m pip install -q "cargo-zigbuild==$CARGO_ZIGBUILD"
}

build() {
    local target=$1
    echo "== build $target" >&2
    RUSTFLAGS="-C target-feature=+crt-static -C link-self-contained=no -Zunstable-options -Cpanic=immediate-abort $(flags_of "$target")" \
        cargo "+$NIGHTLY" zigbuild --release --locked -p wilife-agent --target "$target" \
        -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size \
        --target-dir "$cross_dir" --manifest-path "$root/Cargo.toml" >&2
    echo "$cross_dir/$target/release/wilife-agent"
}

# tar with fixed owners, modes as staged, and a fixed time: the same input gives the same archive.
det_tar() {
    local out=$1 dir=$2
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@${SOURCE_DATE_EPOCH:-0}" \
        -C "$dir" -cf - . | gzip -9n > "$out"
}

# The .ipk of a staged package (WORK/data, WORK/control): opkg's outer gzip'd tar of debian-binary,
# control.tar.gz and data.tar.gz, in that order.
pack() {
    local work=$1 out=$2
    mkdir -p "$work/outer"
    printf '2.0\n' > "$work/outer/debian-binary"
    det_tar "$work/outer/data.tar.gz" "$work/data"
    det_tar "$work/outer/control.tar.gz" "$work/control"
    tar --owner=0 --group=0 --numeric-owner --mtime="@${SOURCE_DATE_EPOCH:-0}" \
        -C "$work/outer" -cf - ./debian-binary ./control.tar.gz ./data.tar.gz | gzip -9n > "$out"
}

# Assembles one .ipk: outer gzip'd tar of debian-binary, control.tar.gz, data.tar.gz (opkg's format).
assemble() {
    local bin=$1 arch=$2 out=$3
    local work; work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    local data="$work/data" control="$work/control"
    mkdir -p "$data/usr/sbin" "$data/etc/init.d" "$data/etc/config" "$data/etc/uci-defaults" \
        "$data/usr/share/nftables.d/chain-pre/forward" "$control"
    install -m 0755 "$bin" "$data/usr/sbin/wilife-agent"
    install -m 0755 "$pkg_dir/files/wilife.init" "$data/etc/init.d/wilife"
    install -m 0600 "$pkg_dir/files/wilife.config" "$data/etc/config/wilife"
    install -m 0755 "$pkg_dir/files/wilife.uci-defaults" "$data/etc/uci-defaults/90-wilife"
    install -m 0644 "$pkg_dir/files/usr/share/nftables.d/chain-pre/forward/30-wilife.nft" \
        "$data/usr/share/nftables.d/chain-pre/forward/30-wilife.nft"
    local size; size=$(du -sb "$data" | cut -f1)
    cat > "$control/control" <<EOF
Package: wilife-agent
Version: $version-r$release
Depends: nftables-json
Source: openwrt-package/wilife-agent
SourceName: wilife-agent
License: GPL-2.0-only
Section: net
Architecture: $arch
Installed-Size: $size
Description: Makes the router do what the WiLife / Logitech Alert camera system needs: a UPnP IGD
 scoped to the direct-mode ports, camera LAN isolation, outbound allowances, and a JSON API that says
 whether direct remote viewing can work. Cameras on the same bridge as the PC also need kmod-nft-bridge.
EOF
    echo "/etc/config/wilife" > "$control/conffiles"
    for script in postinst postinst-pkg prerm postrm; do
        install -m 0755 "$here/ipk/$script" "$control/$script"
    done
    pack "$work" "$out"
}

# luci-app-wilife, architecture all: the JavaScript views, menu and ACL JSON, the rpcd plugin wrapper.
assemble_luci() {
    local out=$1
    local work; work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    local data="$work/data" control="$work/control"
    mkdir -p "$data/www" "$control"
    cp -r "$root/luci-app/htdocs/." "$data/www/"
    cp -r "$root/luci-app/root/." "$data/"
    find "$data" -type d -exec chmod 0755 {} +
    find "$data" -type f -exec chmod 0644 {} +
    chmod 0755 "$data/usr/libexec/rpcd/luci.wilife"
    local size; size=$(du -sb "$data" | cut -f1)
    {
        echo "Package: luci-app-wilife"
        echo "Version: $version-r$release"
        echo "Depends: wilife-agent, luci-base"
        echo "Source: luci-app"
        echo "SourceName: luci-app-wilife"
        echo "License: GPL-2.0-only"
        echo "Section: luci"
        echo "Architecture: all"
        echo "Installed-Size: $size"
        echo "Description: LuCI support for wilife-agent: a status page that says whether remote viewing of"
        echo " the WiLife cameras works and why not, and the settings."
    } > "$control/control"
    install -m 0755 "$here/ipk/luci-postinst" "$control/postinst"
    pack "$work" "$out"
}

ensure_tools
mkdir -p "$dist"
failed=0
table="target|arch|binary (B)|gzip (B)|ipk (B)"
for target in $targets; do
    archs=$(archs_of "$target")
    start=$(date +%s)
    bin=$(build "$target")
    took=$(( $(date +%s) - start ))
    bsize=$(stat -c %s "$bin")
    gsize=$(gzip -9c "$bin" | wc -c)
    mkdir -p "$dist/bin"
    cp "$bin" "$dist/bin/wilife-agent-$target"
    for arch in $archs; do
        ipk="$dist/wilife-agent_${version}-r${release}_${arch}.ipk"
        assemble "$bin" "$arch" "$ipk"
        isize=$(stat -c %s "$ipk")
        table="$table
$target|$arch|$bsize|$gsize|$isize"
        if [ "$isize" -gt "$budget_ipk" ]; then
            echo "BUDGET: $ipk is $isize B, over $budget_ipk B" >&2
            failed=1
        fi
    done
    echo "   $target built in ${took} s" >&2
    if [ "$bsize" -gt "$budget_bin" ]; then
        echo "BUDGET: the $target binary is $bsize B, over $budget_bin B" >&2
        failed=1
    fi
done
luci="$dist/luci-app-wilife_${version}-r${release}_all.ipk"
assemble_luci "$luci"
table="$table
luci-app-wilife|all|-|-|$(stat -c %s "$luci")"
echo "$table" | awk -F'|' '{ printf "%-32s %-26s %12s %10s %10s\n", $1, $2, $3, $4, $5 }'
exit $failed
