//! The packages `openwrt-package/build-packages.sh` writes into dist/ (tests/run.sh builds them first),
//! found by name and architecture, and read as opkg and apk read them: an .ipk with tar, an .apk with
//! the independent reader and OpenWrt's checks (`tests/tools/`).

use crate::lab::repo_root;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn dist() -> PathBuf {
    repo_root().join("dist")
}

/// `KEY:=value` of the agent's feed Makefile.
pub fn makefile_value(key: &str) -> String {
    let mk = fs::read_to_string(repo_root().join("openwrt-package/wilife-agent/Makefile")).unwrap();
    mk.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:=")))
        .unwrap_or_else(|| panic!("no {key} in the feed Makefile"))
        .trim()
        .to_string()
}

/// PKG_VERSION-rPKG_RELEASE, as both formats write it.
pub fn version() -> String {
    format!(
        "{}-r{}",
        makefile_value("PKG_VERSION"),
        makefile_value("PKG_RELEASE")
    )
}

/// opkg's file name: NAME_VERSION_ARCH.ipk.
pub fn ipk(name: &str, arch: &str) -> PathBuf {
    built(dist().join(format!("{name}_{}_{arch}.ipk", version())))
}

/// apk's file name carries no arch: dist/apk/ARCH/NAME-VERSION.apk.
pub fn apk(name: &str, arch: &str) -> PathBuf {
    built(dist().join(format!("apk/{arch}/{name}-{}.apk", version())))
}

fn built(package: PathBuf) -> PathBuf {
    assert!(
        package.exists(),
        "{} is missing: run openwrt-package/build-packages.sh (tests/run.sh does)",
        package.display()
    );
    package
}

/// Every arch name the agent's .ipk files were written for.
pub fn ipk_archs() -> Vec<String> {
    let prefix = format!("wilife-agent_{}_", version());
    let mut v: Vec<String> = fs::read_dir(dist())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.retain(|n| n.starts_with(&prefix) && n.ends_with(".ipk"));
    let mut archs: Vec<String> = v
        .iter()
        .map(|n| n[prefix.len()..n.len() - ".ipk".len()].to_string())
        .collect();
    archs.sort();
    assert!(
        archs.iter().any(|a| a == "x86_64"),
        "no x86_64 .ipk in {}: run openwrt-package/build-packages.sh (tests/run.sh does)",
        dist().display()
    );
    archs
}

/// Every arch name the agent's .apk files were written for (their folders).
pub fn apk_archs() -> Vec<String> {
    let name = format!("wilife-agent-{}.apk", version());
    let mut archs: Vec<String> = fs::read_dir(dist().join("apk"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    archs.retain(|a| dist().join("apk").join(a).join(&name).exists());
    archs.sort();
    archs
}

/// Every package architecture OpenWrt 24.10 and 25.12 publish packages for (their release build
/// targets, 24.10.8 and 25.12.5; 25.12 dropped mips_4kec and renamed riscv64_riscv64 riscv64_generic).
pub const OPENWRT_ARCHS: [&str; 35] = [
    "aarch64_cortex-a53",
    "aarch64_cortex-a72",
    "aarch64_cortex-a76",
    "aarch64_generic",
    "arm_arm1176jzf-s_vfp",
    "arm_arm926ej-s",
    "arm_cortex-a15_neon-vfpv4",
    "arm_cortex-a5_vfpv4",
    "arm_cortex-a7",
    "arm_cortex-a7_neon-vfpv4",
    "arm_cortex-a7_vfpv4",
    "arm_cortex-a8_vfpv3",
    "arm_cortex-a9",
    "arm_cortex-a9_neon",
    "arm_cortex-a9_vfpv3-d16",
    "arm_fa526",
    "arm_xscale",
    "armeb_xscale",
    "i386_pentium-mmx",
    "i386_pentium4",
    "loongarch64_generic",
    "mips64_octeonplus",
    "mips_24kc",
    "mips_4kec",
    "mips_mips32",
    "mipsel_24kc",
    "mipsel_24kc_24kf",
    "mipsel_74kc",
    "mipsel_mips32",
    "powerpc64_e5500",
    "powerpc_464fp",
    "powerpc_8548",
    "riscv64_generic",
    "riscv64_riscv64",
    "x86_64",
];

/// Those no package is built for; the README and docs/PACKAGES.md say why.
pub const NOT_BUILT: [&str; 6] = [
    "arm_fa526",
    "armeb_xscale",
    "loongarch64_generic",
    "powerpc64_e5500",
    "powerpc_464fp",
    "powerpc_8548",
];

/// (ELF machine, big-endian, 64-bit) an OpenWrt package architecture's binaries have.
pub fn elf_for(arch: &str) -> (u16, bool, bool) {
    let family = arch.split('_').next().unwrap();
    match family {
        "x86" if arch == "x86_64" => (0x3e, false, true),
        "i386" => (0x03, false, false),
        "aarch64" => (0xb7, false, true),
        "arm" => (0x28, false, false),
        "mips" => (0x08, true, false),
        "mipsel" => (0x08, false, false),
        "mips64" => (0x08, true, true),
        "mips64el" => (0x08, false, true),
        "powerpc" => (0x14, true, false),
        "powerpc64" => (0x15, true, true),
        "riscv64" => (0xf3, false, true),
        "loongarch64" => (0x102, false, true),
        _ => panic!("unknown architecture {arch}"),
    }
}

/// Whether `elf` is a program for `arch`: a static ELF of its machine, class and byte order.
pub fn assert_elf_for(elf: &[u8], arch: &str, what: &str) {
    let (machine, big, wide) = elf_for(arch);
    assert_eq!(&elf[..4], b"\x7fELF", "{what}");
    assert_eq!(elf[4] == 2, wide, "{what}: ELF class for {arch}");
    assert_eq!(elf[5] == 2, big, "{what}: byte order for {arch}");
    let m = if big {
        u16::from_be_bytes([elf[18], elf[19]])
    } else {
        u16::from_le_bytes([elf[18], elf[19]])
    };
    assert_eq!(m, machine, "{what}: ELF machine for {arch}");
}

/// OpenWrt's checks of an .apk (`tests/tools/openwrt_apk_check.py`, over the independent reader):
/// the package as JSON, or why it is refused.
pub fn apk_check(apk: &Path) -> Result<serde_json::Value, String> {
    let out = Command::new("python3")
        .arg(repo_root().join("tests/tools/openwrt_apk_check.py"))
        .arg(apk)
        .output()
        .expect("python3");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("the checker prints JSON"))
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `tar -tv` lines of a gzip'd tar as (mode, owner, path).
pub fn listing(archive: &Path) -> Vec<(String, String, String)> {
    run("tar", &["-tvzf", archive.to_str().unwrap()])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[f.len() - 1].to_string(),
            )
        })
        .collect()
}

pub fn unpack(archive: &Path, into: &Path) {
    fs::create_dir_all(into).unwrap();
    run(
        "tar",
        &[
            "-xzf",
            archive.to_str().unwrap(),
            "-C",
            into.to_str().unwrap(),
        ],
    );
}

/// An .ipk unpacked as opkg does: its control fields, and its files (path, mode) in `into`.
pub struct Ipk {
    pub control: String,
    pub root: PathBuf,
    pub files: Vec<(String, u32)>,
}

impl Ipk {
    pub fn open(ipk: &Path, into: &Path) -> Ipk {
        unpack(ipk, into);
        unpack(&into.join("control.tar.gz"), &into.join("control"));
        let root = into.join("root");
        unpack(&into.join("data.tar.gz"), &root);
        let files = listing(&into.join("data.tar.gz"))
            .into_iter()
            .filter(|(m, _, _)| m.starts_with('-'))
            .map(|(m, _, p)| (p.trim_start_matches('.').to_string(), mode_bits(&m)))
            .collect();
        Ipk {
            control: fs::read_to_string(into.join("control/control")).unwrap(),
            root,
            files,
        }
    }

    /// A control field's value (its first line).
    pub fn field(&self, key: &str) -> String {
        self.control
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("no {key} in\n{}", self.control))
            .to_string()
    }
}

/// `-rwxr-xr-x` as 0o755.
fn mode_bits(ls: &str) -> u32 {
    ls[1..10]
        .chars()
        .fold(0, |m, c| m << 1 | u32::from(c != '-'))
}

/// A fresh scratch directory for one test.
pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wilife-pkg-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}
