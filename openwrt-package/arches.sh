# The router targets: which Rust target each binary is built for, with which extra flags, which OpenWrt
# package architectures it is published under, and what runs it here (qemu-user). Sourced by
# build-packages.sh and check-cross.sh.

all_targets="x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf mipsel-unknown-linux-musl mips-unknown-linux-musl"

# OpenWrt package architectures each binary serves (a static binary runs on every one listed).
archs_of() {
    case "$1" in
        x86_64-unknown-linux-musl) echo "x86_64" ;;
        aarch64-unknown-linux-musl) echo "aarch64_cortex-a53 aarch64_generic" ;;
        armv7-unknown-linux-musleabihf) echo "arm_cortex-a7_neon-vfpv4 arm_cortex-a9_vfpv3-d16 arm_cortex-a7 arm_cortex-a9" ;;
        mipsel-unknown-linux-musl) echo "mipsel_24kc" ;;
        mips-unknown-linux-musl) echo "mips_24kc" ;;
        *) echo "arches.sh: unknown target $1 (known: $all_targets)" >&2; return 1 ;;
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

# The qemu-user program that runs a target's binaries here (none: this machine's own).
runner_of() {
    case "$1" in
        x86_64-*) echo "" ;;
        aarch64-*) echo "qemu-aarch64-static" ;;
        armv7-*) echo "qemu-arm-static" ;;
        mipsel-*) echo "qemu-mipsel-static" ;;
        mips-*) echo "qemu-mips-static" ;;
        *) echo "arches.sh: no runner for $1" >&2; return 1 ;;
    esac
}
