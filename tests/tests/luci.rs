//! Issue 7: LuCI's way to the agent. The rpcd exec plugin (`luci-app/root/usr/libexec/rpcd/luci.wilife`)
//! is run exactly as rpcd runs it — `list`, and `call METHOD` with the JSON arguments on stdin — against
//! the agent in the lab: it answers what the API answers, and a clear JSON error (never a crash or a
//! hang) for wrong arguments and a stopped agent. The menu and ACL files are checked too.

use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use wilife_lab::lab::*;
use wilife_lab::openwrt::Root;

const TOKEN: &str = "luci-test-token-0123456789";

fn luci_app() -> PathBuf {
    repo_root().join("luci-app")
}

/// The plugin installed as the packages install it — luci-app's wrapper at /usr/libexec/rpcd, the agent
/// under test at /usr/sbin/wilife-agent, the lab's config at /etc/config/wilife — untouched: it runs
/// exactly as installed (`openwrt-root`), reading the config where OpenWrt has it.
fn plugin(lab: &Lab, config: &Path) -> Root {
    let root = Root::new(&lab.dir);
    let installed = root.dir.join("usr/libexec/rpcd/luci.wilife");
    fs::create_dir_all(installed.parent().unwrap()).unwrap();
    fs::copy(
        luci_app().join("root/usr/libexec/rpcd/luci.wilife"),
        &installed,
    )
    .unwrap();
    fs::create_dir_all(root.dir.join("usr/sbin")).unwrap();
    std::os::unix::fs::symlink(agent_bin(), root.dir.join("usr/sbin/wilife-agent")).unwrap();
    fs::create_dir_all(root.dir.join("etc/config")).unwrap();
    std::os::unix::fs::symlink(config, root.dir.join("etc/config/wilife")).unwrap();
    root
}

/// rpcd's way: the plugin in the router, arguments on stdin, rpcd's environment (no /dev/stdin,
/// OpenWrt's PATH); (exit status success, stdout as JSON).
fn rpcd(lab: &Lab, plugin: &Root, args: &[&str], stdin: &str) -> (bool, Value, Duration) {
    let start = Instant::now();
    let full: Vec<&str> = ["/usr/libexec/rpcd/luci.wilife"]
        .iter()
        .chain(args)
        .copied()
        .collect();
    let out = plugin.run(lab, false, &full, &[], stdin.as_bytes());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text:?} {out:?}"));
    (out.status.success(), v, start.elapsed())
}

/// Drops what changes from one second to the next.
fn steady(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in [
                    "uptime_s",
                    "age_s",
                    "lease_left_s",
                    "last_seen",
                    "at",
                    "duration_ms",
                ] {
                    m.remove(k);
                }
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// A lab agent in mode upnp with the porch camera and an API token; (lab, config path, config text).
fn camera_lab() -> (Lab, PathBuf, String) {
    let mut lab = Lab::new();
    let text = lab.config(
        "upnp",
        &format!("config camera\n\toption name 'porch'\n\toption mac '{CAMERA_MAC}'\n"),
    );
    lab.set_token(TOKEN);
    let cfg = lab.write_config("wilife", &text);
    lab.start_upnp_agent(&cfg);
    (lab, cfg, text)
}

#[test]
fn the_rpcd_plugin_answers_what_the_api_answers() {
    let (mut lab, cfg, _) = camera_lab();
    lab.say_hello_to_router(&lab.cc);
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 3600), 0);
    std::thread::sleep(Duration::from_millis(300));
    let plugin = plugin(&lab, &cfg);

    let (ok, list, _) = rpcd(&lab, &plugin, &["list"], "");
    assert!(ok);
    assert_eq!(
        list,
        json!({"status": {}, "diagnosis": {}, "mappings": {}, "cameras": {}, "remedy": {},
               "outbound": {}, "health": {}, "probe": {}, "last_probe": {}, "start": {},
               "delete_mapping": {"protocol": "str", "port": 32}})
    );
    for (method, path) in [
        ("status", "/api/v1/status"),
        ("diagnosis", "/api/v1/diagnosis"),
        ("mappings", "/api/v1/mappings"),
        ("cameras", "/api/v1/cameras"),
        ("remedy", "/api/v1/remedy"),
        ("outbound", "/api/v1/outbound"),
        ("last_probe", "/api/v1/probe"),
    ] {
        let (ok, got, _) = rpcd(&lab, &plugin, &["call", method], "{}");
        assert!(ok, "{method}");
        assert_eq!(steady(got), steady(lab.api_get(path)), "{method}");
    }
    let (_, m, _) = rpcd(&lab, &plugin, &["call", "mappings"], "");
    assert_eq!(m["mappings"][0]["external_port"], 20570, "{m}");
    // The probe, run on demand: the mapping's own run a moment ago holds the rate limit.
    let (ok, p, _) = rpcd(&lab, &plugin, &["call", "probe"], "{}");
    assert!(ok);
    assert_eq!(p["status"], 429, "{p}");
    assert!(p["error"].as_str().unwrap().contains("ask again in"), "{p}");

    // Delete: the mapping goes, with the API's answer; a second delete is a clear error.
    let args = r#"{"protocol": "TCP", "port": 20570}"#;
    let (ok, del, _) = rpcd(&lab, &plugin, &["call", "delete_mapping"], args);
    assert!(ok);
    assert_eq!(del["removed"][0]["external_port"], 20570, "{del}");
    assert_eq!(lab.api_get("/api/v1/mappings")["mappings"], json!([]));
    let (_, again, _) = rpcd(&lab, &plugin, &["call", "delete_mapping"], args);
    assert_eq!(again["status"], 404, "{again}");
    assert!(
        again["error"].as_str().unwrap().contains("20570"),
        "{again}"
    );

    // Wrong arguments: JSON errors.
    for (input, words) in [
        ("{\"port\": \"x\"}", "1 to 65535"),
        ("{\"port\": 20570, \"protocol\": \"UDP\"}", "only TCP"),
        ("not json", "not JSON"),
        ("[]", "JSON object"),
    ] {
        let (ok, v, _) = rpcd(&lab, &plugin, &["call", "delete_mapping"], input);
        assert!(ok, "{input}");
        assert!(
            v["error"].as_str().unwrap_or("").contains(words),
            "{input}: {v}"
        );
    }
    let (_, v, _) = rpcd(&lab, &plugin, &["call", "reboot"], "{}");
    assert!(
        v["error"].as_str().unwrap().contains("unknown method"),
        "{v}"
    );

    // The agent stopped: a clear error, quickly (nothing listens, the connection is refused).
    lab.stop_agent();
    let (ok, v, took) = rpcd(&lab, &plugin, &["call", "status"], "{}");
    assert!(ok);
    assert!(
        v["error"].as_str().unwrap().contains("does not answer"),
        "{v}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn menu_and_acl_are_well_formed_and_point_at_what_the_package_holds() {
    let root = luci_app().join("root");
    let acl: Value = serde_json::from_str(
        &fs::read_to_string(root.join("usr/share/rpcd/acl.d/luci-app-wilife.json")).unwrap(),
    )
    .unwrap();
    let list = rpcd_methods();
    let read = acl["luci-app-wilife"]["read"]["ubus"]["luci.wilife"]
        .as_array()
        .unwrap();
    let write = acl["luci-app-wilife"]["write"]["ubus"]["luci.wilife"]
        .as_array()
        .unwrap();
    // Least privilege: reading never includes a method that acts; every method is granted once.
    assert!(!read.contains(&json!("delete_mapping")) && !read.contains(&json!("start")));
    assert_eq!(write, &vec![json!("delete_mapping"), json!("start")]);
    for m in list.as_object().unwrap().keys() {
        assert!(
            read.contains(&json!(m)) || write.contains(&json!(m)),
            "{m} not in the ACL"
        );
    }
    for m in read.iter().chain(write) {
        assert!(
            list.get(m.as_str().unwrap()).is_some(),
            "ACL grants unknown method {m}"
        );
    }
    assert_eq!(acl["luci-app-wilife"]["write"]["uci"], json!(["wilife"]));
    let menu: Value = serde_json::from_str(
        &fs::read_to_string(root.join("usr/share/luci/menu.d/luci-app-wilife.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        menu["admin/services/wilife"]["depends"]["acl"],
        json!(["luci-app-wilife"])
    );
    for (_, entry) in menu.as_object().unwrap() {
        if entry["action"]["type"] == "view" {
            let view = entry["action"]["path"].as_str().unwrap();
            let file = luci_app().join(format!("htdocs/luci-static/resources/view/{view}.js"));
            assert!(
                file.exists(),
                "menu view {view}: {} is missing",
                file.display()
            );
        }
    }
    // The translation template holds every string the views and the menu show.
    let pot = Command::new("python3")
        .arg(luci_app().join("po/update-pot.py"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        pot.status.success(),
        "{}",
        String::from_utf8_lossy(&pot.stdout)
    );
    let plugin = root.join("usr/libexec/rpcd/luci.wilife");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&plugin).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o755, "rpcd runs only executable plugins");
}

fn rpcd_methods() -> Value {
    let out = Command::new(agent_bin())
        .args(["rpcd", "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// rpcd answers for the status view, keyed as the harness wants them (`object.method`).
fn capture(lab: &Lab, plugin: &Root) -> Value {
    let mut answers = serde_json::Map::new();
    for m in ["diagnosis", "mappings", "cameras", "status", "last_probe"] {
        let (_, v, _) = rpcd(lab, plugin, &["call", m], "{}");
        assert!(v.get("error").is_none(), "{m}: {v}");
        answers.insert(format!("luci.wilife.{m}"), v);
    }
    Value::Object(answers)
}

/// Behind an ISP router (miniupnpd, NAT-PMP): the Command Center's mapping carried upstream and
/// reachable from the internet, the end-to-end test through the gateway; the views' answers then.
fn double_nat_case() -> Value {
    let mut lab = Lab::new();
    let _isp = lab.behind_isp(&["natpmp"]);
    let _cc = lab.echo_server(&lab.cc, 20570, "cc");
    let text = lab.config(
        "upnp",
        &format!("config camera\n\toption name 'porch'\n\toption mac '{CAMERA_MAC}'\n"),
    );
    let cfg = lab.write_config("wilife", &text);
    lab.start_upnp_agent(&cfg);
    lab.say_hello_to_router(&lab.cc);
    lab.say_hello_to_router(&lab.camera);
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 3600), 0);
    let internet = lab.internet.clone();
    lab.time_until(Duration::from_secs(15), || {
        lab.reaches(&internet, (WAN_IP, 20570).into())
    })
    .expect("reachable through both NATs");
    // The test after the mapping ran before the gateway forwarded it: once more, now.
    lab.time_until(Duration::from_secs(12), || {
        lab.api_post("/api/v1/probe").0 == 200
    })
    .expect("an on-demand test");
    let plugin = plugin(&lab, &cfg);
    capture(&lab, &plugin)
}

/// Markup a LAN client or a config may carry; the views must show it as text and never run it.
const HOSTILE: &str = "WiLife<img src=x onerror=window.PWNED=1>";

#[test]
fn the_views_render_real_answers_in_a_headless_browser() {
    let (mut lab, cfg, text) = camera_lab();
    let plugin = plugin(&lab, &cfg);
    // The direct case: the cc and the camera are on the network, the cc has mapped its port and
    // listens on it (the end-to-end probe finds it).
    let _cc = lab.echo_server(&lab.cc, 20570, "cc");
    lab.say_hello_to_router(&lab.cc);
    lab.say_hello_to_router(&lab.camera);
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 3600), 0);
    // A description with markup, as any authorised LAN client may send it: the views show it as text.
    let (status, body) = lab.soap(
        &lab.cc,
        WANIP1,
        "AddPortMapping",
        &[
            ("NewRemoteHost", ""),
            ("NewExternalPort", "20571"),
            ("NewProtocol", "TCP"),
            ("NewInternalPort", "20571"),
            ("NewInternalClient", &CC_IP.to_string()),
            ("NewEnabled", "1"),
            (
                "NewPortMappingDescription",
                &HOSTILE.replace('<', "&lt;").replace('>', "&gt;"),
            ),
            ("NewLeaseDuration", "3600"),
        ],
    );
    assert_eq!(upnp_error(status, &body), 0, "{body}");
    // The agent keeps descriptions as plain text (defence in depth): the markup characters are gone.
    let stored = lab.api_get("/api/v1/mappings")["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["external_port"] == 20571)
        .map(|m| m["description"].as_str().unwrap().to_string())
        .unwrap();
    assert_eq!(stored, "WiLifeimg src=x onerror=window.PWNED=1");
    let ready = |lab: &Lab, direct: bool| {
        let (_, d, _) = rpcd(lab, &plugin, &["call", "diagnosis"], "{}");
        let (_, c, _) = rpcd(lab, &plugin, &["call", "cameras"], "{}");
        d["direct_possible"] == direct && c["cameras"][0]["present"] == true
    };
    // ... and the end-to-end test has reached the Command Center through the public address.
    let probed = |lab: &Lab| {
        let (_, p, _) = rpcd(lab, &plugin, &["call", "last_probe"], "{}");
        (p["probe"]["hops"].as_array().into_iter().flatten())
            .any(|h| h["hop"] == "public_address" && h["verdict"] == "answered")
    };
    lab.time_until(Duration::from_secs(5), || ready(&lab, true) && probed(&lab))
        .expect("the direct case is reached");
    let mut direct = capture(&lab, &plugin);
    // Test now, right after the run the mappings made: the rate limit's answer.
    let (_, too_soon, _) = rpcd(&lab, &plugin, &["call", "probe"], "{}");
    assert_eq!(too_soon["status"], 429, "{too_soon}");
    direct["luci.wilife.probe"] = too_soon;
    // What Delete gets back, for real (the mapping is gone afterwards).
    let (_, deleted, _) = rpcd(
        &lab,
        &plugin,
        &["call", "delete_mapping"],
        r#"{"protocol":"tcp","port":20570}"#,
    );
    assert_eq!(deleted["removed"][0]["external_port"], 20570, "{deleted}");
    direct["luci.wilife.delete_mapping"] = deleted;
    // The relay case: the WAN address becomes private (double NAT).
    lab.ip(&lab.router, &["addr", "flush", "dev", WAN_DEV]);
    lab.ip(&lab.router, &["addr", "add", "10.0.0.2/24", "dev", WAN_DEV]);
    lab.time_until(Duration::from_secs(3), || ready(&lab, false))
        .expect("the relay case is reached");
    let relay = capture(&lab, &plugin);
    // A refused reload (a Command Center with a name only, which `wilife-agent check` refuses): the status
    // answer carries config.reload_error and the agent runs on with the old config.
    let no_address = text.replace(&format!("\toption ip '{CC_IP}'\n"), "");
    let p = lab.write_config("no-address", &no_address);
    let out = lab.run_agent(&["check", "--config", p.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "check must refuse a Command Center without ip or mac"
    );
    fs::write(&cfg, &no_address).unwrap();
    lab.signal_agent(nix::sys::signal::Signal::SIGHUP);
    lab.wait_log("reload refused", Duration::from_secs(3));
    let (_, reload_status, _) = rpcd(&lab, &plugin, &["call", "status"], "{}");
    assert!(
        reload_status["config"]["reload_error"].is_string(),
        "{reload_status}"
    );

    // Values the form must refuse are exactly those `wilife-agent check` refuses.
    let bad = [
        (
            "ports",
            "option ports '20570-20575'".into(),
            "option ports '20575-20570'",
        ),
        (
            "smtp_port",
            String::new(),
            "\nconfig outbound 'outbound'\n\toption smtp_port '70000'",
        ),
    ];
    let mut bad_config = text.clone();
    for (option, good, wrong) in &bad {
        let one = if good.is_empty() {
            format!("{text}{wrong}\n")
        } else {
            text.replace(good.as_str(), wrong)
        };
        let p = lab.write_config("bad", &one);
        let out = lab.run_agent(&["check", "--config", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !out.status.success() && err.contains(option),
            "check must refuse {option}: {err}"
        );
        bad_config = if good.is_empty() {
            format!("{bad_config}{wrong}\n")
        } else {
            bad_config.replace(good.as_str(), wrong)
        };
    }
    let hints = json!({
        CC_MAC: {"name": "office-pc", "ipaddrs": [CC_IP.to_string()]},
        CAMERA_MAC: {"name": "porch-cam", "ipaddrs": [CAMERA_IP.to_string()]},
    });
    let shipped = repo_root().join("openwrt-package/wilife-agent/files/wilife.config");
    // A camera a hardware switch hides cannot be made here (veth ports have no switch): the agent's
    // own answers for the MT7621 snapshot, its golden verdicts and remedy, stand for it.
    let snapshots = repo_root().join("agent/tests/switching");
    let golden = |path: &str| -> Value {
        serde_json::from_str(&fs::read_to_string(snapshots.join(path)).unwrap()).unwrap()
    };
    let case = "mt7621-camera-and-pc-on-the-switch/remedy/own-bridge";
    let uci_file = |name: &str| fs::read_to_string(snapshots.join(case).join(name)).unwrap();
    let switching = json!({
        "verdicts": golden("mt7621-camera-and-pc-on-the-switch/verdicts.json"),
        "remedy": golden(&format!("{case}/expected.json")),
        "refused": golden("mt7621-camera-behind-the-pcs-port/remedy/refused/expected.json"),
        "files": {"network": uci_file("network"), "firewall": uci_file("firewall"), "dhcp": uci_file("dhcp")},
    });
    let captured = json!({
        "switching": switching,
        "cases": {"direct": direct, "relay": relay},
        "double_nat": double_nat_case(),
        "config": text,
        "bad_config": bad_config,
        "bad_options": bad.iter().map(|b| b.0).collect::<Vec<_>>(),
        "hints": hints,
        "hostile": HOSTILE,
        "stored_hostile": stored,
        "reload_status": reload_status,
        "no_address_config": no_address,
        "shipped_config": fs::read_to_string(shipped).unwrap(),
    });
    // The agent stopped: what every method answers then, and what Start answers.
    lab.stop_agent();
    let mut down = serde_json::Map::new();
    for m in ["diagnosis", "mappings", "cameras", "status", "last_probe"] {
        let (_, v, _) = rpcd(&lab, &plugin, &["call", m], "{}");
        assert_eq!(v["not_running"], true, "{m}: {v}");
        down.insert(format!("luci.wilife.{m}"), v);
    }
    down.insert("luci.wilife.start".into(), json!({"started": true}));
    let mut captured = captured;
    captured["down"] = Value::Object(down);
    let file = lab.dir.join("captured.json");
    fs::write(&file, serde_json::to_string_pretty(&captured).unwrap()).unwrap();
    // Screenshots are kept as artefacts of the run; those the README and docs show are made anew in
    // docs/screenshots, so they stay current.
    let shots = repo_root().join("target/luci-screenshots");
    let docs = repo_root().join("docs/screenshots");
    let out = Command::new("python3")
        .arg(repo_root().join("tests/clients/luci_views_check.py"))
        .arg(&file)
        .arg(&shots)
        .arg(&docs)
        .output()
        .expect("python3 (tests/run.sh and .ci/run install playwright and chromium)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the views failed in the browser:\n{report}"
    );
    assert!(report.contains("\n0 failures"), "{report}");
    for png in [
        "status-direct.png",
        "status-relay.png",
        "status-hostile.png",
        "status-failures.png",
        "status-readonly.png",
        "status-bypassed.png",
        "status-remedy-confirm.png",
        "overview-direct.png",
        "settings.png",
        "status-down.png",
    ] {
        let bytes = fs::read(shots.join(png)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{png}"
        );
    }
    for page in [
        "status-direct",
        "status-relay",
        "status-double-nat",
        "status-down",
        "overview",
        "settings",
    ] {
        for shot in [format!("{page}.png"), format!("{page}-phone.png")] {
            let bytes = fs::read(docs.join(&shot)).unwrap();
            assert!(
                bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
                "{shot}"
            );
        }
    }
}

#[test]
fn the_luci_ipk_holds_the_app_with_its_modes() {
    let ipk = repo_root().join("dist/luci-app-wilife_0.1.0-r1_all.ipk");
    assert!(
        ipk.exists(),
        "{} is missing: run openwrt-package/build-packages.sh (tests/run.sh does)",
        ipk.display()
    );
    let list = |archive: &Path| -> Vec<(String, String)> {
        let out = Command::new("tar")
            .arg("-tvzf")
            .arg(archive)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('-'))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(f[1], "0/0", "{l}");
                (f[f.len() - 1].to_string(), f[0].to_string())
            })
            .collect()
    };
    let dir = std::env::temp_dir().join(format!("wilife-luci-ipk-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let ok = Command::new("tar")
        .arg("-xzf")
        .arg(&ipk)
        .arg("-C")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(ok.success());
    assert_eq!(
        fs::read_to_string(dir.join("debian-binary")).unwrap(),
        "2.0\n"
    );
    let data = list(&dir.join("data.tar.gz"));
    let want: Vec<(String, String)> = [
        ("./usr/libexec/rpcd/luci.wilife", "-rwxr-xr-x"),
        ("./usr/share/luci/menu.d/luci-app-wilife.json", "-rw-r--r--"),
        ("./usr/share/rpcd/acl.d/luci-app-wilife.json", "-rw-r--r--"),
        (
            "./www/luci-static/resources/view/status/include/75_wilife.js",
            "-rw-r--r--",
        ),
        (
            "./www/luci-static/resources/view/wilife/settings.js",
            "-rw-r--r--",
        ),
        (
            "./www/luci-static/resources/view/wilife/status.js",
            "-rw-r--r--",
        ),
        ("./www/luci-static/resources/wilife.js", "-rw-r--r--"),
    ]
    .iter()
    .map(|(p, m)| (p.to_string(), m.to_string()))
    .collect();
    assert_eq!(data, want);
    let out = Command::new("tar")
        .args(["-xzOf"])
        .arg(dir.join("control.tar.gz"))
        .arg("./control")
        .output()
        .unwrap();
    let control = String::from_utf8_lossy(&out.stdout).to_string();
    for field in [
        "Package: luci-app-wilife",
        "Version: 0.1.0-r1",
        "Architecture: all",
        "Depends: wilife-agent, luci-base",
    ] {
        assert!(control.lines().any(|l| l == field), "{field} in\n{control}");
    }
    let _ = fs::remove_dir_all(&dir);
}
