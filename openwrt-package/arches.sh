# The router targets: which Rust target each binary is built for and with which extra flags, which
# OpenWrt package architectures it is published under (every one whose routers run it: a static
# binary needs no more than the instruction set), and which qemu-user CPUs prove that here. Sourced by
# build-packages.sh and check-cross.sh. The arch names are those OpenWrt 24.10 and 25.12 publish
# packages for (each target's CPU_TYPE/CPU_SUBTYPE, include/target.mk); docs/PACKAGES.md says which
# routers each serves, and which names get no package and why.

all_targets="x86_64-unknown-linux-musl i586-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf armv5te-unknown-linux-musleabi mipsel-unknown-linux-musl mips-unknown-linux-musl mips64-unknown-linux-muslabi64 riscv64gc-unknown-linux-musl"

# OpenWrt package architectures each binary serves.
archs_of() {
    case "$1" in
        x86_64-unknown-linux-musl) echo "x86_64" ;;
        # No SSE: runs on the Geode and other Pentium-class x86/legacy boards as well as x86/generic.
        i586-unknown-linux-musl) echo "i386_pentium-mmx i386_pentium4" ;;
        aarch64-unknown-linux-musl) echo "aarch64_cortex-a53 aarch64_cortex-a72 aarch64_cortex-a76 aarch64_generic" ;;
        # ARMv7 with a VFP the kernel drives (hard float).
        armv7-unknown-linux-musleabihf) echo "arm_cortex-a15_neon-vfpv4 arm_cortex-a5_vfpv4 arm_cortex-a7_neon-vfpv4 arm_cortex-a7_vfpv4 arm_cortex-a8_vfpv3 arm_cortex-a9_neon arm_cortex-a9_vfpv3-d16" ;;
        # Soft float, ARMv5TE: the older cores, and arm_cortex-a7 (mt7629) and arm_cortex-a9 (bcm53xx),
        # whose kernels are built without VFP support: a hard-float binary dies there (SIGILL).
        armv5te-unknown-linux-musleabi) echo "arm_arm1176jzf-s_vfp arm_arm926ej-s arm_cortex-a7 arm_cortex-a9 arm_xscale" ;;
        # MIPS32 release 1 (soft float), which release 2 cores run too.
        mipsel-unknown-linux-musl) echo "mipsel_24kc mipsel_24kc_24kf mipsel_74kc mipsel_mips32" ;;
        mips-unknown-linux-musl) echo "mips_24kc mips_4kec mips_mips32" ;;
        # Octeon has no FPU: its kernel (CONFIG_MIPS_FP_SUPPORT) emulates the few float instructions.
        mips64-unknown-linux-muslabi64) echo "mips64_octeonplus" ;;
        # 25.12 renamed riscv64_riscv64 (24.10) to riscv64_generic.
        riscv64gc-unknown-linux-musl) echo "riscv64_generic riscv64_riscv64" ;;
        *) echo "arches.sh: unknown target $1 (known: $all_targets)" >&2; return 1 ;;
    esac
}

# Extra code-generation flags per target.
flags_of() {
    case "$1" in
        # Cortex-A9 parts with VFPv3-D16 (mvebu and others) have only 16 double registers.
        armv7-*) echo "-C target-feature=-d32" ;;
        # MIPS32r1 (bmips, bcm47xx): the target's default CPU is r2, whose ext/ins/seb/wsbh/rotr an r1
        # core does not have; the r2 feature must go too, or the spec's +mips32r2 wins.
        mips-* | mipsel-*) echo "-C target-cpu=mips32 -C target-feature=-mips32r2" ;;
        *) echo "" ;;
    esac
}

# The qemu-user program that runs a target's binaries here (none: this machine's own).
runner_of() {
    case "$1" in
        x86_64-*) echo "" ;;
        i586-*) echo "qemu-i386-static" ;;
        aarch64-*) echo "qemu-aarch64-static" ;;
        armv7-* | armv5te-*) echo "qemu-arm-static" ;;
        mipsel-*) echo "qemu-mipsel-static" ;;
        mips-*) echo "qemu-mips-static" ;;
        mips64-*) echo "qemu-mips64-static" ;;
        riscv64gc-*) echo "qemu-riscv64-static" ;;
        *) echo "arches.sh: no runner for $1" >&2; return 1 ;;
    esac
}

# The qemu CPU models each binary must run on: the cores of the arch names it serves, the oldest and
# the most limited among them ("-": the runner's default, or this machine).
cpus_of() {
    case "$1" in
        x86_64-*) echo "-" ;;
        i586-*) echo "pentium pentium2" ;;
        aarch64-*) echo "cortex-a53 cortex-a72 cortex-a76" ;;
        # cortex-r5f: VFPv3 with 16 double registers, as on the Armada 385 and Tegra 2.
        armv7-*) echo "cortex-r5f cortex-a7 cortex-a8 cortex-a9 cortex-a15" ;;
        armv5te-*) echo "arm926 pxa270 arm1176 cortex-a7,vfp=off,neon=off cortex-a9,vfp=off,neon=off" ;;
        mipsel-*) echo "4Kc 24Kc 24Kf 74Kf" ;;
        mips-*) echo "4Kc 4KEc 24Kc" ;;
        mips64-*) echo "MIPS64R2-generic" ;;
        riscv64gc-*) echo "-" ;;
        *) echo "arches.sh: no CPUs for $1" >&2; return 1 ;;
    esac
}
