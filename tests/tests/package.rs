//! Issues 6 and 26: the packages `openwrt-package/build-packages.sh` assembles (tests/run.sh builds
//! them first). Each .ipk is unpacked the way opkg does and every field and file mode is checked (the
//! .apk files are read back in `apk.rs`). Then both are installed into a scratch root the way opkg and
//! apk install them, on a router that has booted (reload_config has summed its configs), their scripts
//! run live under busybox ash with OpenWrt's applets and default_postinst: the installed init script
//! starts the agent in the lab router, where a WAN connection then reaches the Command Center. The
//! README's first steps, an apk upgrade and a removal are run the same way.

use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use wilife_lab::docs::{shown, Shell, Shown, PACKAGE_MANAGER};
use wilife_lab::lab::*;
use wilife_lab::openwrt::{ApkInstalled, Root};
use wilife_lab::packages::*;
use wilife_lab::procd::{Did, Procd};

#[test]
fn every_ipk_unpacks_like_opkg_with_its_fields_modes_and_binary() {
    for arch in ipk_archs() {
        let path = ipk("wilife-agent", &arch);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let work = tempdir(&name);
        // The outer archive: exactly these three members, debian-binary first.
        let outer: Vec<String> = listing(&path).into_iter().map(|(_, _, p)| p).collect();
        assert_eq!(
            outer,
            ["./debian-binary", "./control.tar.gz", "./data.tar.gz"],
            "{name}"
        );
        let ipk = Ipk::open(&path, &work);
        assert_eq!(
            fs::read_to_string(work.join("debian-binary")).unwrap(),
            "2.0\n"
        );
        assert_eq!(ipk.field("Package"), "wilife-agent");
        assert_eq!(ipk.field("Version"), version());
        assert_eq!(ipk.field("Architecture"), arch);
        assert_eq!(ipk.field("Depends"), "nftables-json");
        assert!(!ipk.field("Description").is_empty());
        // The scripts as OpenWrt's SDK writes them for opkg, and the package's own parts.
        let modes: Vec<(String, String, String)> = listing(&work.join("control.tar.gz"));
        for script in ["./postinst", "./prerm", "./postrm", "./postinst-pkg"] {
            assert!(
                modes
                    .iter()
                    .any(|(m, o, p)| p == script && m == "-rwxr-xr-x" && o == "0/0"),
                "{name}: {script} must be 0755 root: {modes:?}"
            );
        }
        let control = |f: &str| fs::read_to_string(work.join("control").join(f)).unwrap();
        assert!(control("postinst").ends_with("\ndefault_postinst $0 $@\n"));
        assert!(control("prerm").ends_with("\ndefault_prerm $0 $@\n"));
        let scripts = repo_root().join("openwrt-package/scripts");
        assert_eq!(
            control("postinst-pkg"),
            fs::read_to_string(scripts.join("wilife-agent.postinst")).unwrap()
        );
        assert_eq!(
            control("postrm"),
            fs::read_to_string(scripts.join("wilife-agent.postrm")).unwrap()
        );
        assert_eq!(control("conffiles"), "/etc/config/wilife\n");
        // data.tar.gz: every file, its mode, root-owned; nothing else.
        for (_, owner, _) in listing(&work.join("data.tar.gz")) {
            assert_eq!(owner, "0/0", "{name}");
        }
        let want = [
            ("/etc/config/wilife", 0o600),
            ("/etc/init.d/wilife", 0o755),
            ("/etc/uci-defaults/90-wilife", 0o755),
            ("/lib/upgrade/keep.d/wilife-agent", 0o644),
            ("/usr/sbin/wilife-agent", 0o755),
            (
                "/usr/share/nftables.d/chain-pre/forward/30-wilife.nft",
                0o644,
            ),
        ];
        let want: Vec<(String, u32)> = want.iter().map(|(p, m)| (p.to_string(), *m)).collect();
        assert_eq!(ipk.files, want, "{name}");
        let size: u64 = ipk.field("Installed-Size").parse().unwrap();
        let bin = ipk.root.join("usr/sbin/wilife-agent");
        assert!(size >= fs::metadata(&bin).unwrap().len());
        // The binary is for this architecture: static ELF of the right machine, class and byte order.
        assert_elf_for(&fs::read(&bin).unwrap(), &arch, &name);
        // The packaged config and include are the repository's.
        let files_dir = repo_root().join("openwrt-package/wilife-agent/files");
        assert_eq!(
            fs::read(ipk.root.join("etc/config/wilife")).unwrap(),
            fs::read(files_dir.join("wilife.config")).unwrap()
        );
        assert_eq!(
            fs::read(
                ipk.root
                    .join("usr/share/nftables.d/chain-pre/forward/30-wilife.nft")
            )
            .unwrap(),
            fs::read(forward_include_path()).unwrap()
        );
        let _ = fs::remove_dir_all(&work);
    }
}

/// Which package manager installs the packages.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Manager {
    /// opkg (OpenWrt up to 24.10): the .ipk; postinst calls default_postinst with its own path, which
    /// runs the uci-defaults, the package's postinst-pkg, then enable and start.
    Opkg,
    /// apk (25.12): the .apk; post-install, run from a file descriptor in a clean environment,
    /// exports pkgname and calls default_postinst (uci-defaults, enable, start), then the package's
    /// own part.
    Apk,
}

/// A lab router with both packages installed as `manager` would on a running router: files unpacked
/// (fw4 has no include before that), then the postinst scripts run live (no IPKG_INSTROOT) under busybox
/// ash with OpenWrt's applets only, and procd acting on what they ask. netifd knows `networks`; `config`
/// is appended to the shipped /etc/config/wilife first (what a user adds in LuCI).
fn installed_router(
    networks: &[(&str, bool, Option<&str>, Option<&str>)],
    config: &str,
) -> (Lab, Root, Procd, Vec<Did>) {
    let (lab, root, procd, did, _) = installed_by(Manager::Opkg, networks, config);
    (lab, root, procd, did)
}

/// The same with either manager; under apk, also what apk keeps of the agent's package.
fn installed_by(
    manager: Manager,
    networks: &[(&str, bool, Option<&str>, Option<&str>)],
    config: &str,
) -> (Lab, Root, Procd, Vec<Did>, Option<ApkInstalled>) {
    let mut lab = Lab::new();
    lab.set_fw4_include_installed(false);
    lab.load_fw4();
    lab.set_fw4_include_installed(true);
    let root = Root::new(&lab.dir);
    root.boot(&lab);
    root.set_networks(networks);
    let user_config = |root: &Root| {
        let shipped = root.read("/etc/config/wilife").unwrap();
        root.write("/etc/config/wilife", &(shipped + config));
    };
    let mut procd = Procd::default();
    let agent = match manager {
        Manager::Opkg => {
            assert_eq!(root.install(&ipk("wilife-agent", "x86_64")), "wilife-agent");
            assert_eq!(
                root.install(&ipk("luci-app-wilife", "all")),
                "luci-app-wilife"
            );
            user_config(&root);
            root.ash(
                &lab,
                &["/usr/lib/opkg/info/wilife-agent.postinst", "configure"],
            );
            None
        }
        Manager::Apk => {
            let agent = root.apk_unpack(&apk("wilife-agent", "x86_64"));
            user_config(&root);
            root.apk_script(&lab, &agent, "post-install", &[&agent.version]);
            root.apk_add(&lab, &apk("luci-app-wilife", "noarch"));
            Some(agent)
        }
    };
    let did = procd.act(&mut lab, &root);
    (lab, root, procd, did, agent)
}

const CC_SECTION: &str =
    "\nconfig command_center\n\toption name 'office-pc'\n\toption ip '192.168.50.10'\n";

/// The installed agent's `status` and the rpcd plugin, run exactly as installed (the plugin as rpcd
/// runs it: `call METHOD`, arguments on stdin).
fn rpcd(lab: &Lab, root: &Root, method: &str, args: &str) -> Value {
    let out = root.run(
        lab,
        false,
        &["/usr/libexec/rpcd/luci.wilife", "call", method],
        &[],
        args.as_bytes(),
    );
    serde_json::from_str(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|e| panic!("rpcd {method}: {e}: {out:?}"))
}

/// The API token the router holds: 32 hex digits in a root-only file.
fn installed_token(root: &Root) -> Option<String> {
    let token = root.read(TOKEN_FILE)?.trim_end().to_string();
    assert_eq!(root.owner_and_mode(TOKEN_FILE), Some((0, 0o600)));
    assert!(
        token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{token}"
    );
    Some(token)
}

const TOKEN_FILE: &str = "/etc/wilife/api_token";

fn installed_status(lab: &Lab, root: &Root) -> Value {
    let out = root.run(
        lab,
        false,
        &["/usr/sbin/wilife-agent", "status", "--json"],
        &[],
        b"",
    );
    assert!(out.status.success(), "status: {out:?}");
    serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap()
}

#[test]
fn the_package_as_shipped_works_on_a_router_and_follows_the_wan_device() {
    let (mut lab, root, mut procd, did) = installed_router(
        &[
            ("wan", true, Some(WAN_DEV), Some(WAN_DEV)),
            ("lan", true, Some(LAN_DEV), Some(LAN_DEV)),
        ],
        CC_SECTION,
    );
    // opkg's order: uci-defaults, our part (fw4 reload, so it inlines the include), enable, start.
    assert_eq!(
        did,
        vec![Did::FirewallReloaded, Did::Started],
        "{}",
        lab.log()
    );
    assert!(fs::read_link(root.dir.join(".rw/etc/upper/rc.d/S99wilife")).is_ok());
    // The uci-defaults made a token (busybox has no base64), wrote it where only root reads it (not
    // into the config read-only LuCI users read), and removed themselves.
    let config = root.read("/etc/config/wilife").unwrap();
    let token = installed_token(&root).expect("a token");
    assert!(!config.contains(&token), "{config}");
    let gone = root.run(
        &lab,
        false,
        &["test", "-e", "/etc/uci-defaults/90-wilife"],
        &[],
        b"",
    );
    assert!(!gone.status.success(), "uci-defaults left behind");

    // The agent resolved the networks itself and applied its table through nft without /dev/stdin.
    let log = lab.log();
    assert!(log.contains("wan wan0 (wan), lan br-lan (lan)"), "{log}");
    assert!(!log.contains("/dev/stdin"), "{log}");
    assert!(lab.table_present(), "{log}");
    // `check`, `status` and every rpcd method answer with the config as shipped.
    let check = root.run(&lab, false, &["/usr/sbin/wilife-agent", "check"], &[], b"");
    assert!(check.status.success(), "check: {check:?}");
    assert_eq!(installed_status(&lab, &root)["wan"]["device"], WAN_DEV);
    // Every method the plugin lists (rpcd runs `list` at its start), called as rpcd calls it.
    let listed = root.run(
        &lab,
        false,
        &["/usr/libexec/rpcd/luci.wilife", "list"],
        &[],
        b"",
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    // (`start` takes no arguments either, but it acts: it is tried below, with the agent stopped.)
    let reads = listed
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, args)| **args == json!({}) && *name != "start");
    assert_eq!(reads.clone().count(), 9, "{listed}");
    for (method, _) in reads {
        let v = rpcd(&lab, &root, method, "{}");
        // The probe (the only one that acts) may answer that it ran moments ago: an answer too.
        let limited = method == "probe" && v["status"] == 429;
        assert!(v.get("error").is_none() || limited, "{method}: {v}");
    }
    assert_eq!(
        rpcd(&lab, &root, "status", "{}")["firewall"]["fw4_include"]["in_fw4_ruleset"],
        true
    );

    // The Command Center maps its port; the internet reaches it.
    let _server = lab.echo_server(&lab.cc.clone(), 20572, "cc");
    assert_eq!(lab.add_mapping(&lab.cc, 20572, "TCP", CC_IP, 0), 0);
    let via =
        |lab: &Lab, ip: std::net::Ipv4Addr| lab.tcp_exchange(&lab.remote, (ip, 20572).into(), "hi");
    assert_eq!(via(&lab, WAN_IP).unwrap(), "cc:hi");

    // Registering the same instance again changes nothing (procd compares definitions).
    root.ash(&lab, &["/etc/rc.common", "/etc/init.d/wilife", "start"]);
    assert_eq!(procd.act(&mut lab, &root), vec![Did::Unchanged]);

    // wan moves to another device (PPPoE comes up): netifd says so, fw4 reloads with it, and the
    // interface trigger reaches the agent as a signal: it follows without a restart, mappings kept.
    let pid = lab.agent_pid();
    lab.ip(
        &lab.router,
        &[
            "link",
            "add",
            "pppoe-wan",
            "type",
            "veth",
            "peer",
            "name",
            "eth1",
            "netns",
            &lab.remote,
        ],
    );
    lab.ip(
        &lab.router,
        &["addr", "add", "198.51.100.1/24", "dev", "pppoe-wan"],
    );
    lab.ip(&lab.router, &["link", "set", "pppoe-wan", "up"]);
    lab.ip(
        &lab.remote,
        &["addr", "add", "198.51.100.100/24", "dev", "eth1"],
    );
    lab.ip(&lab.remote, &["link", "set", "eth1", "up"]);
    lab.ip(&lab.router, &["link", "set", WAN_DEV, "down"]);
    root.set_networks(&[
        ("wan", true, Some("pppoe-wan"), Some(WAN_DEV)),
        ("lan", true, Some(LAN_DEV), Some(LAN_DEV)),
    ]);
    lab.set_fw4_wan_device("pppoe-wan");
    lab.load_fw4();
    assert_eq!(
        procd.interface_event(&mut lab, &root, "wan"),
        vec![Did::Signalled(nix::sys::signal::Signal::SIGHUP)]
    );
    lab.wait_log("configuration reloaded", Duration::from_secs(5));
    assert_eq!(lab.agent_pid(), pid, "not restarted");
    let status = installed_status(&lab, &root);
    assert_eq!(status["wan"]["device"], "pppoe-wan", "{status}");
    assert_eq!(
        lab.api_get("/api/v1/mappings")["mappings"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let new_wan: std::net::Ipv4Addr = "198.51.100.1".parse().unwrap();
    let reached = lab.time_until(Duration::from_secs(3), || {
        via(&lab, new_wan).is_ok_and(|a| a == "cc:hi")
    });
    assert!(
        reached.is_some(),
        "the mapping does not work on the new WAN device:\n{}",
        lab.log()
    );

    // LuCI's Delete through the plugin works with the generated token.
    let del = rpcd(
        &lab,
        &root,
        "delete_mapping",
        r#"{"protocol":"TCP","port":20572}"#,
    );
    assert!(del.get("error").is_none(), "{del}");
    assert!(lab.api_get("/api/v1/mappings")["mappings"]
        .as_array()
        .unwrap()
        .is_empty());

    // A new token as the shipped config's comment says, run verbatim under busybox ash. Writing the
    // file alone tells nobody (the agent keeps the old token, so LuCI's Delete is refused); the
    // init script's reload signals the agent, which reads the new one.
    let advice = config
        .lines()
        .find(|l| l.contains("gen-token"))
        .map(|l| l.trim_start_matches(['#', ' ', '\t']).to_string())
        .expect("the config says how to make a token");
    let (write, reload) = advice
        .split_once(" && ")
        .expect("the advice writes, then reloads");
    let _server = lab.echo_server(&lab.cc.clone(), 20573, "cc");
    assert_eq!(lab.add_mapping(&lab.cc, 20573, "TCP", CC_IP, 0), 0);
    root.ash(&lab, &["-c", write]);
    assert_ne!(installed_token(&root), Some(token), "a new token");
    assert_eq!(procd.act(&mut lab, &root), vec![], "a file sends no event");
    let refused = rpcd(&lab, &root, "delete_mapping", r#"{"port":20573}"#);
    assert_eq!(refused["status"], 401, "{refused}");
    root.ash(&lab, &["-c", reload]);
    assert_eq!(
        procd.act(&mut lab, &root),
        vec![Did::Signalled(nix::sys::signal::Signal::SIGHUP)]
    );
    lab.wait_log_count("configuration reloaded", 2, Duration::from_secs(5));
    let del = rpcd(&lab, &root, "delete_mapping", r#"{"port":20573}"#);
    assert!(del.get("error").is_none(), "{del}");

    // Stopped, the plugin says so (LuCI then offers to start it); its `start` runs the init script,
    // and procd starts the agent again.
    root.ash(&lab, &["/etc/rc.common", "/etc/init.d/wilife", "stop"]);
    assert_eq!(procd.act(&mut lab, &root), vec![Did::Stopped]);
    assert_eq!(rpcd(&lab, &root, "status", "{}")["not_running"], true);
    assert_eq!(rpcd(&lab, &root, "start", "{}"), json!({"started": true}));
    assert_eq!(procd.act(&mut lab, &root), vec![Did::Started]);
    let back = lab.time_until(Duration::from_secs(5), || {
        rpcd(&lab, &root, "status", "{}").get("error").is_none()
    });
    assert!(back.is_some(), "the agent answers again:\n{}", lab.log());

    // Removal: default_prerm stops the agent (its tables go), our postrm lets fw4 drop the include.
    root.ash(&lab, &["/usr/lib/opkg/info/wilife-agent.prerm", "remove"]);
    root.ash(&lab, &["/usr/lib/opkg/info/wilife-agent.postrm", "remove"]);
    assert_eq!(
        procd.act(&mut lab, &root),
        vec![Did::Stopped, Did::FirewallReloaded]
    );
    assert!(!lab.table_present());
}

/// A read-only LuCI login gets the `read` grants of the ACL files alone (rpcd's session ACL): with the
/// ACL files as installed, nothing it may read holds the API token — not the UCI configs (the token
/// lived in `wilife` once), not a file, not what the plugin's read methods answer — and no method
/// that changes anything is granted.
#[test]
fn a_read_only_luci_user_can_read_nothing_that_holds_the_api_token() {
    let (lab, root, _procd, _) = installed_router(
        &[
            ("wan", true, Some(WAN_DEV), Some(WAN_DEV)),
            ("lan", true, Some(LAN_DEV), Some(LAN_DEV)),
        ],
        CC_SECTION,
    );
    let token = installed_token(&root).expect("a token");
    assert_eq!(lab.add_mapping(&lab.cc, 20572, "TCP", CC_IP, 0), 0);
    // The plugin runs as root and uses it: LuCI's Delete (a write grant) works.
    let del = rpcd(&lab, &root, "delete_mapping", r#"{"port":20572}"#);
    assert!(del.get("error").is_none(), "{del}");
    let acl_dir = "/usr/share/rpcd/acl.d";
    let mut files: Vec<_> = fs::read_dir(root.dir.join(acl_dir.trim_start_matches('/')))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut checked = 0;
    for file in files {
        let acl: Value = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
        for (group, grants) in acl.as_object().unwrap() {
            let read = &grants["read"];
            for config in read["uci"].as_array().into_iter().flatten() {
                let config = config.as_str().unwrap();
                let out = root.run(&lab, false, &["uci", "show", config], &[], b"");
                let shown = String::from_utf8_lossy(&out.stdout);
                assert!(out.status.success() && !shown.is_empty(), "{out:?}");
                assert!(!shown.contains(&token), "{group}: uci {config}:\n{shown}");
                checked += 1;
            }
            for (glob, _) in read["file"].as_object().into_iter().flatten() {
                assert!(!glob_matches(glob, TOKEN_FILE), "{group}: file {glob}");
            }
            for (object, methods) in read["ubus"].as_object().into_iter().flatten() {
                if object != "luci.wilife" {
                    continue;
                }
                for method in methods.as_array().unwrap() {
                    let method = method.as_str().unwrap();
                    assert_ne!(method, "delete_mapping", "{group}: a change in read");
                    let answer = rpcd(&lab, &root, method, "{}");
                    // The probe may answer that it ran moments ago (at the start): an answer too.
                    let limited = method == "probe" && answer["status"] == 429;
                    assert!(
                        answer.get("error").is_none() || limited,
                        "{method}: {answer}"
                    );
                    assert!(!answer.to_string().contains(&token), "{group}: {method}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 7, "uci wilife and six read methods: {checked}");
}

/// rpcd's file ACL globs (`*`, `?`), matching at least as much as fnmatch does.
fn glob_matches(glob: &str, path: &str) -> bool {
    fn go(g: &[u8], p: &[u8]) -> bool {
        match (g.first(), p.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&g[1..], p) || (!p.is_empty() && go(g, &p[1..])),
            (Some(b'?'), Some(_)) => go(&g[1..], &p[1..]),
            (Some(a), Some(b)) if a == b => go(&g[1..], &p[1..]),
            _ => false,
        }
    }
    go(glob.as_bytes(), path.as_bytes())
}

#[test]
fn the_agent_starts_while_the_wan_is_down_and_isolates_cameras_at_once() {
    let camera = format!("\nconfig camera\n\toption name 'porch'\n\toption mac '{CAMERA_MAC}'\n");
    lab_wan_down_then_up(&(CC_SECTION.to_string() + &camera));
}

fn lab_wan_down_then_up(config: &str) {
    let (mut lab, root, mut procd, did) = installed_router(
        &[
            ("wan", false, None, None),
            ("lan", true, Some(LAN_DEV), Some(LAN_DEV)),
        ],
        config,
    );
    assert_eq!(did, vec![Did::FirewallReloaded, Did::Started]);
    // Running, not respawning: the camera rules are in force and the verdict says why not direct.
    lab.wait_log("table inet wilife applied", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert!(lab.agent_pid().is_some());
    let tables = lab.table_text();
    assert!(tables.contains("table bridge wilife"), "{tables}");
    let d = rpcd(&lab, &root, "diagnosis", "{}");
    assert_eq!(d["mode"], "relay_only", "{d}");
    assert_eq!(d["wan"]["device"], Value::Null, "{d}");
    assert!(
        d["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "wan_missing"),
        "{d}"
    );
    // The camera reaches the Command Center's video port, and nothing else.
    let _video = lab.echo_server(&lab.cc.clone(), 22211, "cc");
    assert!(lab.reaches(&lab.camera, (CC_IP, 22211).into()));
    let _other = lab.echo_server(&lab.other.clone(), 8080, "other");
    assert!(!lab.reaches(&lab.camera, (OTHER_IP, 8080).into()));

    // The WAN comes up: the interface trigger tells the agent, and direct mode works.
    root.set_networks(&[
        ("wan", true, Some(WAN_DEV), Some(WAN_DEV)),
        ("lan", true, Some(LAN_DEV), Some(LAN_DEV)),
    ]);
    let _ = procd.interface_event(&mut lab, &root, "wan");
    lab.wait_log("configuration reloaded", Duration::from_secs(5));
    let _server = lab.echo_server(&lab.cc.clone(), 20571, "cc");
    assert_eq!(lab.add_mapping(&lab.cc, 20571, "TCP", CC_IP, 0), 0);
    assert_eq!(
        lab.tcp_exchange(&lab.remote, (WAN_IP, 20571).into(), "up")
            .unwrap(),
        "cc:up"
    );
}

/// Under apk the agent starts before fw4 has inlined the include: it notices the include when fw4
/// reloads (a ruleset change event) and the forward then works, with nothing else done.
#[test]
fn under_apk_the_agent_starts_before_fw4_has_the_include_and_catches_up() {
    let (lab, root, _procd, did, _) = installed_by(
        Manager::Apk,
        &[
            ("wan", true, Some(WAN_DEV), Some(WAN_DEV)),
            ("lan", true, Some(LAN_DEV), Some(LAN_DEV)),
        ],
        CC_SECTION,
    );
    assert_eq!(
        did,
        vec![Did::Started, Did::FirewallReloaded],
        "{}",
        lab.log()
    );
    let active = |lab: &Lab| {
        rpcd(lab, &root, "status", "{}")["firewall"]["fw4_include"]["in_fw4_ruleset"] == true
    };
    let took = lab.time_until(Duration::from_secs(5), || active(&lab));
    assert!(
        took.is_some(),
        "the agent never saw fw4's include:\n{}",
        lab.log()
    );
    let _server = lab.echo_server(&lab.cc.clone(), 20574, "cc");
    assert_eq!(lab.add_mapping(&lab.cc, 20574, "TCP", CC_IP, 0), 0);
    assert_eq!(
        lab.tcp_exchange(&lab.remote, (WAN_IP, 20574).into(), "apk")
            .unwrap(),
        "cc:apk"
    );
}

const UP: [(&str, bool, Option<&str>, Option<&str>); 2] = [
    ("wan", true, Some(WAN_DEV), Some(WAN_DEV)),
    ("lan", true, Some(LAN_DEV), Some(LAN_DEV)),
];

/// The README's first configuration: the shell lines of its block that adds a Command Center, with
/// the lab's Command Center for the README's example address.
fn readme_first_steps() -> String {
    let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme
        .find("uci add wilife command_center")
        .expect("the README says how to add a Command Center");
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    assert!(block.contains("192.168.1.10"), "{block}");
    block.replace("192.168.1.10", &CC_IP.to_string())
}

/// Right after installing, with either manager, the README's first steps (uci add/set, uci commit,
/// reload_config) reach the running agent: OpenWrt's reload_config announces only configs whose sum
/// the boot wrote, and the package's postinst adds wilife's.
#[test]
fn the_readmes_first_steps_reach_the_agent_right_after_installing() {
    let steps = readme_first_steps();
    for manager in [Manager::Apk, Manager::Opkg] {
        let (mut lab, root, mut procd, did, _) = installed_by(manager, &UP, "");
        assert!(did.contains(&Did::Started), "{manager:?}: {did:?}");
        let _server = lab.echo_server(&lab.cc.clone(), 20571, "cc");
        assert_ne!(
            lab.add_mapping(&lab.cc, 20571, "TCP", CC_IP, 0),
            0,
            "no Command Center is authorised before the first steps"
        );
        root.ash(&lab, &["-c", &steps]);
        assert_eq!(
            procd.act(&mut lab, &root),
            [Did::Signalled(nix::sys::signal::Signal::SIGHUP)],
            "{manager:?}: the README's steps did not reach the agent:\n{steps}"
        );
        lab.wait_log("configuration reloaded", Duration::from_secs(5));
        assert_eq!(
            lab.add_mapping(&lab.cc, 20571, "TCP", CC_IP, 0),
            0,
            "{}\n{:?}",
            lab.log(),
            root.read("/etc/config/wilife")
        );
        assert_eq!(
            lab.tcp_exchange(&lab.remote, (WAN_IP, 20571).into(), "hi")
                .unwrap(),
            "cc:hi",
            "{manager:?}"
        );
    }
}

/// The stand-in is as strict as OpenWrt's reload_config: a config installed after the boot's run is
/// not announced by its first change, only from the next on; nothing is announced without the boot's
/// sums.
#[test]
fn reload_config_announces_only_configs_it_has_summed() {
    let lab = Lab::new();
    let root = Root::new(&lab.dir);
    let events = |root: &Root| {
        fs::read_to_string(&root.procd_log)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("event "))
            .count()
    };
    let edit = |root: &Root, text: &str| {
        root.ash(
            &lab,
            &[
                "-c",
                &format!("printf '{text}' > /etc/config/camera; reload_config"),
            ],
        )
    };
    edit(&root, "config x\\n");
    assert_eq!(events(&root), 0, "before the boot's run there are no sums");
    root.boot(&lab);
    edit(&root, "config y\\n");
    assert_eq!(
        events(&root),
        1,
        "a summed config that changed is announced"
    );
    root.ash(
        &lab,
        &[
            "-c",
            "printf 'config z\\n' > /etc/config/new; reload_config",
        ],
    );
    assert_eq!(events(&root), 1, "a new config is only summed");
    root.ash(
        &lab,
        &[
            "-c",
            "printf 'config w\\n' > /etc/config/new; reload_config",
        ],
    );
    let log = fs::read_to_string(&root.procd_log).unwrap();
    assert_eq!(events(&root), 2, "{log}");
    assert!(log.ends_with("event config.change new\n"), "{log}");
}

/// An apk upgrade (`apk fix --reinstall`, `apk upgrade`) runs only the new package's post-upgrade:
/// nothing stops the old agent, and procd would keep it since its definition is the same. The
/// package restarts it, its mappings come back from its state; then `apk del` removes it all.
#[test]
fn an_apk_upgrade_restarts_the_agent_and_apk_del_leaves_nothing_running() {
    let (mut lab, root, mut procd, did, agent) = installed_by(Manager::Apk, &UP, CC_SECTION);
    assert_eq!(did, [Did::Started, Did::FirewallReloaded], "{}", lab.log());
    let agent = agent.unwrap();
    let token = installed_token(&root).expect("a token");
    let _server = lab.echo_server(&lab.cc.clone(), 20572, "cc");
    assert_eq!(lab.add_mapping(&lab.cc, 20572, "TCP", CC_IP, 0), 0);
    let before = lab.agent_pid().unwrap();
    let upgraded = root.apk_upgrade(&lab, &apk("wilife-agent", "x86_64"), &agent);
    assert_eq!(
        procd.act(&mut lab, &root),
        [
            Did::Unchanged,
            Did::FirewallReloaded,
            Did::Stopped,
            Did::Started
        ],
        "{}",
        lab.log()
    );
    assert_ne!(lab.agent_pid(), Some(before), "the new binary runs");
    let back = lab.time_until(Duration::from_secs(5), || {
        lab.tcp_exchange(&lab.remote, (WAN_IP, 20572).into(), "up")
            .is_ok_and(|a| a == "cc:up")
    });
    assert!(
        back.is_some(),
        "the mapping after the upgrade:\n{}",
        lab.log()
    );
    // The token the uci-defaults made is kept (the script ran again and changed nothing).
    assert_eq!(installed_token(&root), Some(token));

    root.apk_del(&lab, &upgraded);
    assert_eq!(
        procd.act(&mut lab, &root),
        [Did::Stopped, Did::FirewallReloaded]
    );
    assert!(lab.agent_pid().is_none());
    assert!(!lab.table_present());
    assert!(fs::read_link(root.dir.join(".rw/etc/upper/rc.d/S99wilife")).is_err());
    for f in upgraded.package["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        // apk keeps a config file the user changed.
        if path != "/etc/config/wilife" {
            assert!(!root.exists(path), "{path} left behind");
        }
    }
}

#[test]
fn uci_defaults_give_the_api_a_root_only_token_once_move_an_old_one_and_never_write_an_empty_one() {
    let lab = Lab::new();
    let root = Root::new(&lab.dir);
    root.install(&ipk("wilife-agent", "x86_64"));
    let script = "/etc/uci-defaults/90-wilife";
    // As the boot (and default_postinst) run it: sourced in a subshell, under busybox ash.
    let run = |root: &Root, lab: &Lab| {
        root.run(
            lab,
            true,
            &["ash", "-c", &format!("( . {script} )")],
            &[],
            b"",
        )
    };
    assert!(run(&root, &lab).status.success());
    let first = installed_token(&root).expect("a token was made");
    let cfg = root.read("/etc/config/wilife").unwrap();
    assert!(!cfg.contains(&first), "{cfg}");
    assert!(
        wilife_agent_accepts(&lab.dir, &cfg, &first),
        "the generated token must be one the agent takes"
    );
    // Idempotent: a second run changes nothing.
    assert!(run(&root, &lab).status.success());
    assert_eq!(installed_token(&root), Some(first.clone()));
    // sysupgrade keeps it (it is no file of the package, so no conffile).
    assert_eq!(
        root.read("/lib/upgrade/keep.d/wilife-agent").as_deref(),
        Some("/etc/wilife/api_token\n")
    );

    // An older version kept the token in /etc/config/wilife: it is moved out, and the option goes.
    let lab2 = Lab::new();
    let old = Root::new(&lab2.dir);
    old.install(&ipk("wilife-agent", "x86_64"));
    let shipped = old.read("/etc/config/wilife").unwrap();
    let before = shipped.replace(
        "\toption api_port '8780'\n",
        "\toption api_port '8780'\n\toption api_token '0123456789abcdef0123456789abcdef'\n",
    );
    old.write("/etc/config/wilife", &before);
    assert!(
        !wilife_agent_accepts(&lab2.dir, &before, ""),
        "check refuses a token where read-only users read it"
    );
    assert!(run(&old, &lab2).status.success());
    assert_eq!(
        installed_token(&old).as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    let after = old.read("/etc/config/wilife").unwrap();
    assert!(!after.contains("api_token '"), "{after}");
    assert!(wilife_agent_accepts(
        &lab2.dir,
        &after,
        "0123456789abcdef0123456789abcdef"
    ));

    // Without the agent (no way to make a token), the script fails, so it stays for the next boot,
    // and writes nothing: never an empty token.
    let lab3 = Lab::new();
    let bare = Root::new(&lab3.dir);
    bare.install(&ipk("wilife-agent", "x86_64"));
    fs::remove_file(bare.dir.join("usr/sbin/wilife-agent")).unwrap();
    let out = run(&bare, &lab3);
    assert!(!out.status.success(), "{out:?}");
    assert!(!bare.exists(TOKEN_FILE));
    assert!(!bare.exists("/etc/wilife/api_token.new"));
    assert!(!bare
        .read("/etc/config/wilife")
        .unwrap()
        .contains("api_token '"));
}

/// Does `wilife-agent check` accept this config text, with `token` (if any) in its token file?
fn wilife_agent_accepts(dir: &Path, text: &str, token: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("checked_token");
    let _ = fs::remove_file(&file);
    if !token.is_empty() {
        fs::write(&file, format!("{token}\n")).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let cfg = dir.join("wilife");
    let text = text.replacen(
        "config agent 'main'\n",
        &format!(
            "config agent 'main'\n\toption api_token_file '{}'\n",
            file.display()
        ),
        1,
    );
    fs::write(&cfg, text).unwrap();
    Command::new(agent_bin())
        .args(["check", "--config", cfg.to_str().unwrap(), "--fw4-include"])
        .arg(forward_include_path())
        .status()
        .unwrap()
        .success()
}

/// The body of `define NAME` … `endef` in a Makefile, with make's `$$` unescaped.
fn define(makefile: &str, name: &str) -> Option<String> {
    let start = makefile.find(&format!("define {name}\n"))? + "define \n".len() + name.len();
    let end = start + makefile[start..].find("\nendef")?;
    Some(makefile[start..end].replace("$$", "$") + "\n")
}

#[test]
fn feed_makefiles_follow_openwrt_conventions() {
    let mk = fs::read_to_string(repo_root().join("openwrt-package/wilife-agent/Makefile")).unwrap();
    // A real source with a documented local override, a license file that exists, a maintainer address.
    for key in [
        "PKG_SOURCE_PROTO",
        "PKG_SOURCE_URL",
        "PKG_SOURCE_VERSION",
        "PKG_MIRROR_HASH",
    ] {
        assert!(!makefile_value(key).is_empty(), "{key}");
    }
    assert!(
        mk.contains("USE_SOURCE_DIR="),
        "the local-development override is documented"
    );
    assert!(
        !mk.contains("$(CURDIR)/../.."),
        "the build must not need the whole repository as the feed"
    );
    let license = makefile_value("PKG_LICENSE_FILES");
    assert!(repo_root().join(&license).is_file(), "{license}");
    let maintainer = makefile_value("PKG_MAINTAINER");
    assert!(maintainer.contains('<') && maintainer.contains('@') && maintainer.ends_with('>'));
    assert!(mk.contains("  URL:="));
    // Maintainer scripts: only what default_postinst/default_prerm do not; both formats carry the
    // same parts (openwrt-package/scripts/).
    let scripts = repo_root().join("openwrt-package/scripts");
    let postinst = define(&mk, "Package/wilife-agent/postinst").unwrap();
    assert_eq!(
        postinst,
        fs::read_to_string(scripts.join("wilife-agent.postinst")).unwrap()
    );
    let postrm = define(&mk, "Package/wilife-agent/postrm").unwrap();
    assert_eq!(
        postrm,
        fs::read_to_string(scripts.join("wilife-agent.postrm")).unwrap()
    );
    assert!(
        define(&mk, "Package/wilife-agent/prerm").is_none(),
        "default_prerm stops and disables"
    );
    for script in [&postinst, &postrm] {
        let commands = script.lines().filter(|l| !l.trim_start().starts_with('#'));
        for line in commands {
            for defaulted in ["enable", "wilife start", "wilife stop", "uci-defaults"] {
                assert!(
                    !line.contains(defaulted),
                    "{defaulted} is the defaults' job:\n{script}"
                );
            }
        }
    }
    // LuCI: luci.mk names the package after its directory unless told.
    let luci = fs::read_to_string(repo_root().join("luci-app/Makefile")).unwrap();
    let value = |key: &str| {
        luci.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:=")))
            .unwrap_or_else(|| panic!("luci-app/Makefile: no {key}"))
            .to_string()
    };
    assert_eq!(value("LUCI_NAME"), "luci-app-wilife");
    assert!(value("LUCI_DEPENDS")
        .split_whitespace()
        .any(|d| d == "+luci-base"));
    assert_eq!(value("PKG_VERSION"), makefile_value("PKG_VERSION"));
}

/// What the README and the shipped files tell a user works on OpenWrt: a CLI `uci commit` reaches
/// nobody unless `reload_config` (or `service wilife reload`) follows; nothing needs `base64`. (The
/// config's own token command is run verbatim in the installed-package test.)
#[test]
fn what_the_readme_and_comments_tell_a_user_works_on_openwrt() {
    let files = [
        "README.md",
        "openwrt-package/wilife-agent/files/wilife.config",
        "openwrt-package/wilife-agent/files/wilife.init",
        "openwrt-package/wilife-agent/files/wilife.uci-defaults",
    ];
    for f in files {
        let text = fs::read_to_string(repo_root().join(f)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains("uci commit wilife") && !line.contains("`uci commit`") {
                let next = lines.get(i + 1).copied().unwrap_or("");
                assert!(
                    [*line, next]
                        .iter()
                        .any(|l| l.contains("reload_config") || l.contains("service wilife reload")),
                    "{f}:{}: `uci commit` alone sends no config.change: {line}",
                    i + 1
                );
            }
            // (The scripts themselves run under OpenWrt's applets in the tests above.)
            assert!(
                !line.contains("base64")
                    || line.contains("no `base64`")
                    || line.contains("no base64"),
                "{f}:{}: OpenWrt's busybox has no base64: {line}",
                i + 1
            );
        }
    }
}

/// Installing or removing a package: what the router test does with the stand-ins of opkg and apk.
fn installs_or_removes(c: &str) -> bool {
    [
        "apk add --allow-untrusted ",
        "opkg install /",
        "apk del ",
        "opkg remove ",
    ]
    .iter()
    .any(|p| c.starts_with(p))
}

/// The names an install or a removal the docs show uses are the packages' (ARCH: this router's).
fn names_are_the_packages(s: &Shown) {
    let words: Vec<&str> = s.command.split_whitespace().collect();
    let file_name = |p: std::path::PathBuf| p.file_name().unwrap().to_string_lossy().to_string();
    // The files after the first `skip` words, this router's ARCH in their names, are `want`.
    let files = |skip: usize, want: [std::path::PathBuf; 2]| {
        let given: Vec<String> = (words[skip..].iter())
            .map(|f| f.rsplit('/').next().unwrap().replace("ARCH", "x86_64"))
            .collect();
        assert_eq!(given, want.map(file_name), "{s}");
    };
    match words[..2] {
        ["apk", "add"] => files(
            3,
            [
                apk("wilife-agent", "x86_64"),
                apk("luci-app-wilife", "noarch"),
            ],
        ),
        ["opkg", "install"] => files(
            2,
            [ipk("wilife-agent", "x86_64"), ipk("luci-app-wilife", "all")],
        ),
        _ => assert_eq!(words[2..], ["luci-app-wilife", "wilife-agent"], "{s}"),
    }
}

/// Every command the README and docs/ show for the router, as shown (the example Command Center's
/// address is the lab's), in the order a reader meets them, on a router with both packages installed
/// as opkg installs them; procd does what each asks. Installs and removals: their names are the
/// packages', and the router is set up and torn down as opkg does it.
#[test]
fn the_docs_router_commands_run_on_an_installed_router() {
    let all: Vec<Shown> = shown()
        .into_iter()
        .filter(|s| s.shell == Shell::Router && !PACKAGE_MANAGER.contains(&s.command.as_str()))
        .collect();
    let (packaging, commands): (Vec<Shown>, Vec<Shown>) = all
        .into_iter()
        .partition(|s| installs_or_removes(&s.command));
    assert!(
        packaging.len() == 4 && commands.len() >= 15,
        "{packaging:?}\n{commands:?}"
    );
    packaging.iter().for_each(names_are_the_packages);
    let (mut lab, root, mut procd, did) = installed_router(&UP, "");
    assert!(did.contains(&Did::Started), "{did:?}");
    let _cc = lab.echo_server(&lab.cc.clone(), 20570, "cc");
    let mut mapped = false;
    let mut reloads = 0;
    for s in &commands {
        let command = s.command.replace("192.168.1.10", &CC_IP.to_string());
        // What the API guide's and the README's checks look at: the Command Center's mapping, made
        // once the README's steps have authorised it.
        if !mapped && (command.contains("probe") || command.contains("delete_mapping")) {
            assert_eq!(
                lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 0),
                0,
                "{}",
                lab.log()
            );
            mapped = true;
        }
        let run = || root.run(&lab, true, &["ash", "-c", &command], &[], b"");
        let mut out = run();
        // The probe runs at most once per 10 s: a mapping has just made one.
        if command == "wilife-agent probe" {
            for _ in 0..12 {
                if out.status.success() {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
                out = run();
            }
        }
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        // What is run to be read says something.
        let reads = ["wilife-agent ", "ubus ", "cat "]
            .iter()
            .any(|p| command.starts_with(p));
        assert!(
            out.status.success() && (!reads || !said.trim().is_empty()),
            "{s}\n{said}{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            lab.log()
        );
        if command.starts_with("ubus call luci.wilife") || command == "wilife-agent rpcd list" {
            let v: Value =
                serde_json::from_str(&said).unwrap_or_else(|e| panic!("{s}: {e}: {said}"));
            assert!(v.get("error").is_none(), "{s}: {v}");
        }
        for done in procd.act(&mut lab, &root) {
            assert!(
                matches!(done, Did::Signalled(nix::sys::signal::Signal::SIGHUP)),
                "{s}: {done:?}"
            );
            reloads += 1;
            lab.wait_log_count("configuration reloaded", reloads, Duration::from_secs(5));
        }
    }
    assert!(
        reloads >= 2,
        "the README's and the docs' reloads reached the agent: {reloads}"
    );
    // Removal, as `opkg remove` does it: each package's prerm, then postrm, where it has them.
    for package in ["luci-app-wilife", "wilife-agent"] {
        for script in ["prerm", "postrm"] {
            let path = format!("/usr/lib/opkg/info/{package}.{script}");
            if root.exists(&path) {
                root.ash(&lab, &[&path, "remove"]);
            }
        }
    }
    assert!(procd.act(&mut lab, &root).contains(&Did::Stopped));
    assert!(!lab.table_present());
}
