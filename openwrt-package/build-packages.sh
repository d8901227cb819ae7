#!/usr/bin/env bash
# Builds wilife-agent for OpenWrt routers and assembles its installable packages, in both of OpenWrt's
# package formats, into dist/:
#
#   openwrt-package/build-packages.sh [RUST_TARGET...]     (every target when none is given)
#
#   dist/bin/wilife-agent-RUST_TARGET                   the static binaries
#   dist/wilife-agent_VERSION_ARCH.ipk                  opkg (OpenWrt 24.10 and older), one per arch name
#   dist/luci-app-wilife_VERSION_all.ipk
#   dist/apk/ARCH/wilife-agent-VERSION.apk              apk-tools v3 (OpenWrt 25.12 and later); apk's
#   dist/apk/noarch/luci-app-wilife-VERSION.apk         file names carry no arch, so one folder per arch
#
# Static musl binaries, built with the pinned nightly (toolchain.env), -Zbuild-std and the
# immediate-abort panic strategy (the size budget needs it), linked by zig through cargo-zigbuild.
# Nothing unwinds under immediate-abort, so no unwind tables either (-C force-unwind-tables=no: .eh_frame
# fell from 87 KB to 9 KB on mipsel). The binaries are static executables at a fixed address (never
# PIE), so their code need not be position-independent: -C relocation-model=static drops MIPS's GOT
# loads and $gp set-up from every function (mipsel -13 %). The linked binary then loses the sections
# nothing reads at run time that strip keeps (MIPS's .pdr procedure descriptors, 119 KB on mipsel;
# .comment), with llvm-objcopy from the nightly's llvm-tools.
# Installs what it lacks (the nightly with rust-src, ziglang and cargo-zigbuild from PyPI). The target
# directory lives outside the clone (WILIFE_CROSS_DIR) so repeated runs reuse it. Each binary is
# published under every OpenWrt package architecture it runs on (arches.sh).
#
# Both formats hold what OpenWrt's own build (include/package-pack.mk) puts in them: the same files,
# and maintainer scripts that call default_postinst / default_prerm; the .apk also carries
# /lib/apk/packages/NAME.{list,conffiles,conffiles_static}, which default_postinst and sysupgrade read.
# The .apk is written by wilife-mkapk (openwrt-package/mkapk), unsigned, as OpenWrt's per-package files
# are: install it with `apk add --allow-untrusted`.
# Fails when a binary or a package grows past its budget (BUDGET_BIN, BUDGET_IPK bytes; the .apk has
# the .ipk's budget).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=toolchain.env
. "$here/toolchain.env"
# shellcheck source=arches.sh
. "$here/arches.sh"

targets="${*:-$all_targets}"
cross_dir="${WILIFE_CROSS_DIR:-/var/tmp/wilife-cross}"
dist="$root/dist"
budget_bin="${BUDGET_BIN:-1000000}"
budget_ipk="${BUDGET_IPK:-420000}"
pkg_dir="$here/wilife-agent"
scripts="$here/scripts"
version=$(sed -n 's/^PKG_VERSION:=//p' "$pkg_dir/Makefile")
release=$(sed -n 's/^PKG_RELEASE:=//p' "$pkg_dir/Makefile")
full_version="$version-r$release"
# Every file's time in both formats: the last commit's, so the same source gives the same packages.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH

ensure_tools() {
    if ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1; then
        rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src --component llvm-tools
    fi
    local have; have=$(rustup component list --toolchain "$NIGHTLY" --installed)
    if ! grep -q '^rust-src' <<<"$have" || ! grep -q '^llvm-tools' <<<"$have"; then
        rustup component add --toolchain "$NIGHTLY" rust-src llvm-tools
    fi
    objcopy="$(rustup run "$NIGHTLY" rustc --print sysroot)/lib/rustlib/$(rustup run "$NIGHTLY" rustc -vV | sed -n 's/^host: //p')/bin/llvm-objcopy"
    python3 -c 'import ziglang' 2>/dev/null || python3 -m pip install -q "ziglang==$ZIGLANG"
    command -v cargo-zigbuild >/dev/null || python3 -m pip install -q "cargo-zigbuild==$CARGO_ZIGBUILD"
    # The APKv3 writer: a build-time tool of this repository, built for this machine.
    cargo build -q --locked -p wilife-mkapk --manifest-path "$root/Cargo.toml" >&2
    mkapk="${CARGO_TARGET_DIR:-$root/target}/debug/wilife-mkapk"
}

build() {
    local target=$1
    echo "== build $target" >&2
    RUSTFLAGS="-C target-feature=+crt-static -C link-self-contained=no -Zunstable-options -Cpanic=immediate-abort -C force-unwind-tables=no -C relocation-model=static $(flags_of "$target")" \
        cargo "+$NIGHTLY" zigbuild --release --locked -p wilife-agent --target "$target" \
        -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size \
        --target-dir "$cross_dir" --manifest-path "$root/Cargo.toml" >&2
    local out="$cross_dir/$target/release/wilife-agent.small"
    "$objcopy" --remove-section=.pdr --remove-section=.comment --remove-section=.mdebug.abi32 \
        "$cross_dir/$target/release/wilife-agent" "$out"
    echo "$out"
}

# tar with fixed owners, modes as staged, and a fixed time: the same input gives the same archive,
# gzip'd by Zopfli (wilife-mkapk gzip: plain gzip, 4 % smaller than gzip -9).
det_tar() {
    local out=$1 dir=$2
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
        -C "$dir" -cf - . | "$mkapk" gzip > "$out"
}

# The maintainer scripts of package NAME as OpenWrt's build writes them, from the package's own parts
# in scripts/ (NAME.postinst, NAME.prerm, NAME.postrm; each optional): into DIR/ipk for opkg,
# DIR/apk for apk.
#   opkg: postinst and prerm call default_postinst / default_prerm with the script's own path
#     ($0, /usr/lib/opkg/info/NAME.postinst), from which they take the package name; they source
#     the package's part from NAME.postinst-pkg / NAME.prerm-pkg; postrm is the package's own.
#   apk: runs a script as /proc/self/fd/N with a clean environment, so $0 names no package: the script
#     exports pkgname (and root) itself, and carries the package's part after default_postinst /
#     default_prerm. post-upgrade is post-install with PKG_UPGRADE=1 (apk sets no such variable).
write_scripts() {
    local name=$1 out=$2
    mkdir -p "$out/ipk" "$out/apk"
    local header='[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh'
    local no_script='[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0'
    # A part's text without interpreter lines: it runs inside the generated script.
    part() { [ -f "$scripts/$name.$1" ] && sed '/^[[:space:]]*#!/d' "$scripts/$name.$1" || true; }

    printf '#!/bin/sh\n%s\n%s\ndefault_postinst $0 $@\n' "$no_script" "$header" > "$out/ipk/postinst"
    printf '#!/bin/sh\n%s\ndefault_prerm $0 $@\n' "$header" > "$out/ipk/prerm"
    [ -f "$scripts/$name.postinst" ] && cp "$scripts/$name.postinst" "$out/ipk/postinst-pkg"
    [ -f "$scripts/$name.prerm" ] && cp "$scripts/$name.prerm" "$out/ipk/prerm-pkg"
    [ -f "$scripts/$name.postrm" ] && cp "$scripts/$name.postrm" "$out/ipk/postrm"

    local exports="export root=\"\${IPKG_INSTROOT}\"
export pkgname=\"$name\""
    {
        printf '%s\n%s\n%s\nadd_group_and_user\ndefault_postinst\n' "$no_script" "$header" "$exports"
        part postinst
    } > "$out/postinst.body"
    printf '#!/bin/sh\n' | cat - "$out/postinst.body" > "$out/apk/post-install"
    printf '#!/bin/sh\nexport PKG_UPGRADE=1\n' | cat - "$out/postinst.body" > "$out/apk/post-upgrade"
    rm "$out/postinst.body"
    {
        printf '#!/bin/sh\n%s\n%s\ndefault_prerm\n' "$header" "$exports"
        part prerm
    } > "$out/apk/pre-deinstall"
    [ -f "$scripts/$name.postrm" ] && cp "$scripts/$name.postrm" "$out/apk/post-deinstall"
    chmod 0755 "$out"/ipk/* "$out"/apk/*
}

# What the .apk carries beside the .ipk's files, under /lib/apk/packages/ (package-pack.mk):
# NAME.list, every file and link the package installs, sorted (default_postinst finds the package's
# uci-defaults and init scripts there; without it the service is never enabled or started);
# NAME.conffiles, as the feed Makefile lists them; NAME.conffiles_static, each with its sha256, for
# sysupgrade. DATA is the staged tree, CONFFILES a file with one path a line (or none).
add_apk_lists() {
    local name=$1 data=$2 conffiles=$3
    local meta="$data/lib/apk/packages"
    mkdir -p "$meta"
    # Listed before it exists, so that it does not list itself.
    (cd "$data" && find . \( -type f -o -type l \) -printf '/%P\n' | LC_ALL=C sort) > "$data.list"
    mv "$data.list" "$meta/$name.list"
    if [ -n "$conffiles" ]; then
        cp "$conffiles" "$meta/$name.conffiles"
        while read -r f; do
            [ -f "$data$f" ] || continue
            echo "$f $(sha256sum < "$data$f" | cut -d' ' -f1)"
        done < "$conffiles" > "$meta/$name.conffiles_static"
    fi
    find "$data/lib" -type d -exec chmod 0755 {} +
    chmod 0644 "$meta"/*
}

# One package in both formats. STAGE holds data/ (the files, modes as installed), control (opkg's
# control fields without Architecture and Installed-Size), scripts/ (write_scripts), and optionally
# conffiles. The .ipk is opkg's outer gzip'd tar of debian-binary, control.tar.gz and data.tar.gz, in
# that order; data.tar.gz is made once per stage, whatever the arch.
pack_ipk() {
    local stage=$1 arch=$2 out=$3
    local work="$stage/ipk-$arch"
    mkdir -p "$work/control" "$work/outer"
    [ -f "$stage/data.tar.gz" ] || det_tar "$stage/data.tar.gz" "$stage/data"
    {
        cat "$stage/control"
        echo "Architecture: $arch"
        echo "Installed-Size: $(du -sb "$stage/data" | cut -f1)"
        cat "$stage/description"
    } > "$work/control/control"
    cp "$stage"/scripts/ipk/* "$work/control/"
    [ -f "$stage/conffiles" ] && cp "$stage/conffiles" "$work/control/conffiles"
    printf '2.0\n' > "$work/outer/debian-binary"
    cp "$stage/data.tar.gz" "$work/outer/data.tar.gz"
    det_tar "$work/outer/control.tar.gz" "$work/control"
    tar --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
        -C "$work/outer" -cf - ./debian-binary ./control.tar.gz ./data.tar.gz | gzip -9n > "$out"
    rm -rf "$work"
}

# The .apk of the same stage, for apk arch ARCH.
pack_apk() {
    local stage=$1 arch=$2 out=$3
    local info=()
    while IFS= read -r -d '' a; do info+=("$a"); done < <(apk_info "$stage")
    if [ ! -d "$stage/apk-data" ]; then
        cp -a "$stage/data" "$stage/apk-data"
        local name; name=$(sed -n 's/^Package: //p' "$stage/control")
        add_apk_lists "$name" "$stage/apk-data" "$([ -f "$stage/conffiles" ] && echo "$stage/conffiles")"
    fi
    local script_args=()
    for s in "$stage"/scripts/apk/*; do
        script_args+=(--script "$(basename "$s"):$s")
    done
    mkdir -p "$(dirname "$out")"
    "$mkapk" "${info[@]}" --info "arch:$arch" --files "$stage/apk-data" "${script_args[@]}" --output "$out"
}

# The opkg control fields of a package; DEPENDS as OpenWrt writes them for opkg (comma-separated).
control_fields() {
    local name=$1 depends=$2 source=$3 section=$4
    printf 'Package: %s\nVersion: %s\nDepends: %s\nSource: %s\nSourceName: %s\nLicense: %s\nSection: %s\n' \
        "$name" "$full_version" "$depends" "$source" "$name" "GPL-2.0-only" "$section"
}

maintainer=$(sed -n 's/^PKG_MAINTAINER:=//p' "$pkg_dir/Makefile")
url=$(sed -n 's/^  URL:=//p' "$pkg_dir/Makefile")
agent_description="Makes the router do what the WiLife / Logitech Alert camera system needs: a UPnP IGD
scoped to the direct-mode ports, camera LAN isolation, outbound allowances, and a JSON API that says
whether direct remote viewing can work. Cameras on the same bridge as the PC also need kmod-nft-bridge."
luci_description="LuCI support for wilife-agent: a status page that says whether remote viewing of
the WiLife cameras works and why not, and the settings."

# The agent's stage (everything but the binary's arch is the same for every arch name).
stage_agent() {
    local bin=$1 stage=$2
    local data="$stage/data"
    mkdir -p "$data/usr/sbin" "$data/etc/init.d" "$data/etc/config" "$data/etc/uci-defaults" \
        "$data/usr/share/nftables.d/chain-pre/forward" "$data/lib/upgrade/keep.d"
    install -m 0755 "$bin" "$data/usr/sbin/wilife-agent"
    install -m 0755 "$pkg_dir/files/wilife.init" "$data/etc/init.d/wilife"
    install -m 0600 "$pkg_dir/files/wilife.config" "$data/etc/config/wilife"
    install -m 0755 "$pkg_dir/files/wilife.uci-defaults" "$data/etc/uci-defaults/90-wilife"
    install -m 0644 "$pkg_dir/files/usr/share/nftables.d/chain-pre/forward/30-wilife.nft" \
        "$data/usr/share/nftables.d/chain-pre/forward/30-wilife.nft"
    install -m 0644 "$pkg_dir/files/lib/upgrade/keep.d/wilife-agent" "$data/lib/upgrade/keep.d/wilife-agent"
    control_fields wilife-agent nftables-json openwrt-package/wilife-agent net > "$stage/control"
    printf 'Description: %s\n' "$agent_description" | sed '2,$s/^/ /' > "$stage/description"
    echo "/etc/config/wilife" > "$stage/conffiles"
    write_scripts wilife-agent "$stage/scripts"
}

# luci-app-wilife: the JavaScript views, menu and ACL JSON, the rpcd plugin wrapper.
stage_luci() {
    local stage=$1
    local data="$stage/data"
    mkdir -p "$data/www"
    cp -r "$root/luci-app/htdocs/." "$data/www/"
    cp -r "$root/luci-app/root/." "$data/"
    find "$data" -type d -exec chmod 0755 {} +
    find "$data" -type f -exec chmod 0644 {} +
    chmod 0755 "$data/usr/libexec/rpcd/luci.wilife"
    control_fields luci-app-wilife "wilife-agent, luci-base" luci-app luci > "$stage/control"
    printf 'Description: %s\n' "$luci_description" | sed '2,$s/^/ /' > "$stage/description"
    write_scripts luci-app-wilife "$stage/scripts"
}

# apk's --info arguments for a stage's package: the same fields as its opkg control. apk's depends
# are words separated by spaces (package-pack.mk turns opkg's commas into spaces).
apk_info() {
    local stage=$1
    field() { sed -n "s/^$1: //p" "$stage/control"; }
    printf '%s\0' --info "name:$(field Package)" --info "version:$(field Version)" \
        --info "description:$(sed 's/^Description: //; s/^ //' "$stage/description" | tr '\n' ' ' | sed 's/ $//')" \
        --info "license:$(field License)" --info "origin:$(field Source)" --info "url:$url" \
        --info "maintainer:$maintainer" --info "depends:$(field Depends | tr ',' ' ' | tr -s ' ')"
}

ensure_tools
mkdir -p "$dist"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
over() {
    local what=$1 size=$2 budget=$3
    if [ "$size" -gt "$budget" ]; then
        echo "BUDGET: $what is $size B, over $budget B" >&2
        failed=1
    fi
}
table="target|arch|binary (B)|gzip (B)|ipk (B)|apk (B)"
for target in $targets; do
    archs=$(archs_of "$target")
    start=$(date +%s)
    bin=$(build "$target")
    took=$(( $(date +%s) - start ))
    bsize=$(stat -c %s "$bin")
    gsize=$(gzip -9c "$bin" | wc -c)
    over "the $target binary" "$bsize" "$budget_bin"
    mkdir -p "$dist/bin"
    cp "$bin" "$dist/bin/wilife-agent-$target"
    stage="$work/$target"
    stage_agent "$bin" "$stage"
    for arch in $archs; do
        ipk="$dist/wilife-agent_${full_version}_${arch}.ipk"
        apk="$dist/apk/$arch/wilife-agent-$full_version.apk"
        pack_ipk "$stage" "$arch" "$ipk"
        pack_apk "$stage" "$arch" "$apk"
        isize=$(stat -c %s "$ipk")
        asize=$(stat -c %s "$apk")
        over "$ipk" "$isize" "$budget_ipk"
        over "$apk" "$asize" "$budget_ipk"
        table="$table
$target|$arch|$bsize|$gsize|$isize|$asize"
    done
    rm -rf "$stage"
    echo "   $target built in ${took} s" >&2
done
stage_luci "$work/luci"
luci_ipk="$dist/luci-app-wilife_${full_version}_all.ipk"
luci_apk="$dist/apk/noarch/luci-app-wilife-$full_version.apk"
pack_ipk "$work/luci" all "$luci_ipk"
# apk refuses arch "all" as foreign: an arch-independent package is "noarch".
pack_apk "$work/luci" noarch "$luci_apk"
table="$table
luci-app-wilife|all / noarch|-|-|$(stat -c %s "$luci_ipk")|$(stat -c %s "$luci_apk")"
echo "$table" | awk -F'|' '{ printf "%-32s %-26s %12s %10s %10s %10s\n", $1, $2, $3, $4, $5, $6 }'
exit $failed
