//! Issue 6: the .ipk files that `openwrt-package/build-ipk.sh` assembles (tests/run.sh builds them
//! first). Each is unpacked the way opkg does and every field and file mode is checked; the x86_64 one
//! is installed into a scratch root (postinst with IPKG_INSTROOT), and its installed init script starts
//! the agent in the lab router, where a WAN connection then reaches the Command Center.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use wilife_lab::lab::*;

fn dist() -> PathBuf {
    repo_root().join("dist")
}

fn ipks() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dist())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.extension().is_some_and(|e| e == "ipk")
            && p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("wilife-agent_"))
    });
    v.sort();
    assert!(
        v.iter().any(|p| p.to_string_lossy().ends_with("_x86_64.ipk")),
        "no x86_64 .ipk in {}: run `openwrt-package/build-ipk.sh x86_64-unknown-linux-musl` (tests/run.sh does)",
        dist().display()
    );
    v
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

/// `tar -tv` lines as (mode, owner, path).
fn listing(archive: &Path) -> Vec<(String, String, String)> {
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

/// `sh ARGS…` with `env` added; panics with its stderr if it fails.
fn sh(args: &[&std::ffi::OsStr], env: &[(&str, &std::ffi::OsStr)]) {
    let out = Command::new("sh")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn unpack(archive: &Path, into: &Path) {
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

fn makefile_value(key: &str) -> String {
    let mk = fs::read_to_string(repo_root().join("openwrt-package/wilife-agent/Makefile")).unwrap();
    mk.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:=")))
        .unwrap()
        .trim()
        .to_string()
}

/// (ELF machine, big-endian, 64-bit) an OpenWrt architecture's binaries must have.
fn elf_for(arch: &str) -> (u16, bool, bool) {
    match arch {
        "x86_64" => (0x3e, false, true),
        a if a.starts_with("aarch64") => (0xb7, false, true),
        a if a.starts_with("arm_") => (0x28, false, false),
        "mipsel_24kc" => (0x08, false, false),
        "mips_24kc" => (0x08, true, false),
        other => panic!("unknown architecture {other}"),
    }
}

#[test]
fn every_ipk_unpacks_like_opkg_with_its_fields_modes_and_binary() {
    let version = format!(
        "{}-r{}",
        makefile_value("PKG_VERSION"),
        makefile_value("PKG_RELEASE")
    );
    for ipk in ipks() {
        let name = ipk.file_name().unwrap().to_string_lossy().to_string();
        let arch = name
            .strip_prefix(&format!("wilife-agent_{version}_"))
            .and_then(|r| r.strip_suffix(".ipk"))
            .unwrap_or_else(|| panic!("{name}: not wilife-agent_{version}_ARCH.ipk"));
        let work = tempdir(&name);
        // The outer archive: exactly these three members, debian-binary first.
        let outer: Vec<String> = listing(&ipk).into_iter().map(|(_, _, p)| p).collect();
        assert_eq!(
            outer,
            ["./debian-binary", "./control.tar.gz", "./data.tar.gz"],
            "{name}"
        );
        unpack(&ipk, &work);
        assert_eq!(
            fs::read_to_string(work.join("debian-binary")).unwrap(),
            "2.0\n"
        );
        // control.tar.gz
        let control_dir = work.join("control");
        unpack(&work.join("control.tar.gz"), &control_dir);
        let control = fs::read_to_string(control_dir.join("control")).unwrap();
        let field = |k: &str| {
            control
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}: ")))
                .unwrap_or_else(|| panic!("{name}: no {k} in\n{control}"))
                .to_string()
        };
        assert_eq!(field("Package"), "wilife-agent");
        assert_eq!(field("Version"), version);
        assert_eq!(field("Architecture"), arch);
        assert_eq!(field("Depends"), "nftables-json");
        assert!(!field("Description").is_empty());
        let modes: Vec<(String, String, String)> = listing(&work.join("control.tar.gz"));
        for script in ["./postinst", "./prerm", "./postrm"] {
            assert!(
                modes
                    .iter()
                    .any(|(m, o, p)| p == script && m == "-rwxr-xr-x" && o == "0/0"),
                "{name}: {script} must be 0755 root: {modes:?}"
            );
        }
        assert_eq!(
            fs::read_to_string(control_dir.join("conffiles")).unwrap(),
            "/etc/config/wilife\n"
        );
        // data.tar.gz: every file, its mode, root-owned; nothing else.
        let data = listing(&work.join("data.tar.gz"));
        let files: Vec<(String, String)> = data
            .iter()
            .filter(|(m, o, _)| {
                assert_eq!(o, "0/0", "{name}: {data:?}");
                m.starts_with('-')
            })
            .map(|(m, _, p)| (p.clone(), m.clone()))
            .collect();
        let want = [
            ("./etc/config/wilife", "-rw-------"),
            ("./etc/init.d/wilife", "-rwxr-xr-x"),
            ("./etc/uci-defaults/90-wilife", "-rwxr-xr-x"),
            ("./usr/sbin/wilife-agent", "-rwxr-xr-x"),
            (
                "./usr/share/nftables.d/chain-pre/forward/30-wilife.nft",
                "-rw-r--r--",
            ),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(p, m)| (p.to_string(), m.to_string()))
            .collect();
        assert_eq!(files, want, "{name}");
        let root = work.join("root");
        unpack(&work.join("data.tar.gz"), &root);
        let size: u64 = field("Installed-Size").parse().unwrap();
        assert!(
            size >= fs::metadata(root.join("usr/sbin/wilife-agent"))
                .unwrap()
                .len()
        );
        // The binary is for this architecture: static ELF of the right machine, class and byte order.
        let elf = fs::read(root.join("usr/sbin/wilife-agent")).unwrap();
        let (machine, big, wide) = elf_for(arch);
        assert_eq!(&elf[..4], b"\x7fELF", "{name}");
        assert_eq!(elf[4] == 2, wide, "{name}: ELF class");
        assert_eq!(elf[5] == 2, big, "{name}: byte order");
        let m = if big {
            u16::from_be_bytes([elf[18], elf[19]])
        } else {
            u16::from_le_bytes([elf[18], elf[19]])
        };
        assert_eq!(m, machine, "{name}: ELF machine");
        // The packaged config and include are the repository's.
        let files_dir = repo_root().join("openwrt-package/wilife-agent/files");
        assert_eq!(
            fs::read(root.join("etc/config/wilife")).unwrap(),
            fs::read(files_dir.join("wilife.config")).unwrap()
        );
        assert_eq!(
            fs::read(root.join("usr/share/nftables.d/chain-pre/forward/30-wilife.nft")).unwrap(),
            fs::read(forward_include_path()).unwrap()
        );
        let _ = fs::remove_dir_all(&work);
    }
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wilife-ipk-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_installed_package_starts_from_its_init_script_and_forwards() {
    let ipk = ipks()
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with("_x86_64.ipk"))
        .unwrap();
    let mut lab = Lab::new();
    // Install like opkg into a scratch root: unpack data, then postinst with IPKG_INSTROOT.
    let work = lab.dir.join("ipk");
    unpack(&ipk, &work);
    let root = lab.dir.join("root");
    unpack(&work.join("data.tar.gz"), &root);
    unpack(&work.join("control.tar.gz"), &work.join("control"));
    sh(
        &[work.join("control/postinst").as_os_str()],
        &[("IPKG_INSTROOT", root.as_os_str())],
    );
    let s99 = fs::read_link(root.join("etc/rc.d/S99wilife")).expect("postinst enables the service");
    assert_eq!(s99, Path::new("../init.d/wilife"));
    assert!(
        root.join("etc/uci-defaults/90-wilife").exists(),
        "left for first boot"
    );

    // The user authorises the Command Center (as `uci add wilife command_center` would), and the
    // state stays in the lab.
    let config = root.join("etc/config/wilife");
    let text = fs::read_to_string(&config).unwrap().replace(
        "/var/run/wilife",
        &lab.dir.join("state").display().to_string(),
    ) + &format!("\nconfig command_center\n\toption name 'pc'\n\toption ip '{CC_IP}'\n");
    fs::write(&config, text).unwrap();

    // The installed init script, with OpenWrt's procd/uci/network helpers stood in (they need
    // ubus, procd and netifd): what command line does it give procd?
    let stubs = repo_root().join("tests/openwrt-stubs");
    let init = fs::read_to_string(root.join("etc/init.d/wilife"))
        .unwrap()
        .replace(
            "/lib/functions/network.sh",
            &stubs.join("network.sh").display().to_string(),
        );
    let init_path = lab.dir.join("wilife.init");
    fs::write(&init_path, init).unwrap();
    let log = lab.dir.join("procd.log");
    sh(
        &[
            stubs.join("rc.common").as_os_str(),
            init_path.as_os_str(),
            "start".as_ref(),
        ],
        &[
            ("STUB_PROCD_LOG", log.as_os_str()),
            ("STUB_NET_wan", WAN_DEV.as_ref()),
            ("STUB_NET_lan", LAN_DEV.as_ref()),
        ],
    );
    let procd = fs::read_to_string(&log).unwrap();
    let command = procd
        .lines()
        .find_map(|l| l.strip_prefix("command "))
        .unwrap_or_else(|| panic!("no instance: {procd}"));
    assert_eq!(
        command,
        format!("/usr/sbin/wilife-agent run --config /etc/config/wilife --wan-device {WAN_DEV} --lan-device {LAN_DEV}")
    );
    for want in [
        "param file /etc/config/wilife",
        "param reload_signal HUP",
        "param respawn 3600 5 5",
        "trigger reload wilife",
        "trigger interface interface.* wan /etc/init.d/wilife reload",
        "trigger interface interface.* lan /etc/init.d/wilife reload",
    ] {
        assert!(
            procd.lines().any(|l| l == want),
            "{want:?} missing:\n{procd}"
        );
    }

    // procd runs that command: the installed binary, config and fw4 include (re-rooted).
    let args: Vec<String> = command
        .split_whitespace()
        .map(|a| match a {
            "/usr/sbin/wilife-agent" | "/etc/config/wilife" => {
                root.join(&a[1..]).display().to_string()
            }
            other => other.to_string(),
        })
        .collect();
    let include = root.join("usr/share/nftables.d/chain-pre/forward/30-wilife.nft");
    let _server = lab.echo_server(&lab.cc.clone(), 20572, "cc");
    lab.spawn_installed_agent(&args, &include);
    lab.wait_log("UPnP IGD listening", Duration::from_secs(10));
    let status = lab.api_status();
    let fw4 = &status["firewall"]["fw4_include"];
    assert_eq!(fw4["path"], include.display().to_string(), "{status}");
    assert_eq!(fw4["present"], true, "{status}");
    assert_eq!(fw4["in_fw4_ruleset"], true, "{status}");
    // The Command Center maps its port over UPnP, and the internet reaches it.
    assert_eq!(lab.add_mapping(&lab.cc, 20572, "TCP", CC_IP, 0), 0);
    assert_eq!(
        lab.tcp_exchange(
            &lab.remote,
            std::net::SocketAddr::from((WAN_IP, 20572)),
            "from afar"
        )
        .unwrap(),
        "cc:from afar"
    );
}

#[test]
fn uci_defaults_give_the_api_a_token_once_and_keep_the_users() {
    // OpenWrt's uci is not packaged here: tests/openwrt-stubs/uci keeps keys in a file.
    let dir = tempdir("uci-defaults");
    let state = dir.join("state");
    let script = repo_root().join("openwrt-package/wilife-agent/files/wilife.uci-defaults");
    let path = format!(
        "{}:{}",
        repo_root().join("tests/openwrt-stubs").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run_script = || {
        sh(
            &[script.as_os_str()],
            &[
                ("PATH", path.as_ref()),
                ("STUB_UCI_STATE", state.as_os_str()),
            ],
        );
        fs::read_to_string(&state).unwrap()
    };
    let token_of = |s: &str| -> Option<String> {
        s.lines()
            .find_map(|l| l.strip_prefix("wilife.main.api_token="))
            .map(str::to_string)
    };
    // First run: a token the config accepts (16-256 printable characters).
    fs::write(&state, "wilife.main=agent\n").unwrap();
    let first = token_of(&run_script()).expect("a token was set");
    assert!(
        (16..=256).contains(&first.len()) && first.bytes().all(|b| b.is_ascii_graphic()),
        "{first}"
    );
    let text = format!(
        "config agent 'main'\n\toption wan_device 'eth1'\n\tlist lan_device 'br-lan'\n\toption api_token '{first}'\n"
    );
    assert!(
        wilife_agent_accepts(&dir, &text),
        "the generated token must be a valid api_token"
    );
    // Idempotent: a second run changes nothing.
    assert_eq!(token_of(&run_script()).as_deref(), Some(first.as_str()));
    // A token the user set is kept.
    fs::write(
        &state,
        "wilife.main=agent\nwilife.main.api_token=users-own-token-1234\n",
    )
    .unwrap();
    assert_eq!(
        token_of(&run_script()).as_deref(),
        Some("users-own-token-1234")
    );
    // No wilife config at all: nothing to do.
    fs::write(&state, "").unwrap();
    assert_eq!(run_script(), "");
    let _ = fs::remove_dir_all(&dir);
}

/// Does `wilife-agent check` accept this config text?
fn wilife_agent_accepts(dir: &Path, text: &str) -> bool {
    let cfg = dir.join("wilife");
    fs::write(&cfg, text).unwrap();
    Command::new(agent_bin())
        .args(["check", "--config", cfg.to_str().unwrap(), "--fw4-include"])
        .arg(forward_include_path())
        .status()
        .unwrap()
        .success()
}
