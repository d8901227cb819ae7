//! Issue 7: LuCI's way to the agent. The rpcd exec plugin (`luci-app/root/usr/libexec/rpcd/luci.wilife`)
//! is run exactly as rpcd runs it — `list`, and `call METHOD` with the JSON arguments on stdin — against
//! the agent in the lab: it answers what the API answers, and a clear JSON error (never a crash or a
//! hang) for wrong arguments and a stopped agent. The menu and ACL files are checked too.

use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wilife_lab::lab::*;

const TOKEN: &str = "luci-test-token-0123456789";

fn luci_app() -> PathBuf {
    repo_root().join("luci-app")
}

/// The installed plugin, with its binary path pointed at the build under test and the lab's config.
fn plugin(lab: &Lab, config: &Path) -> PathBuf {
    let wrapper = fs::read_to_string(luci_app().join("root/usr/libexec/rpcd/luci.wilife")).unwrap();
    assert!(
        wrapper.contains("exec /usr/sbin/wilife-agent rpcd \"$@\""),
        "{wrapper}"
    );
    let here = wrapper.replace(
        "exec /usr/sbin/wilife-agent rpcd \"$@\"",
        &format!(
            "exec {} rpcd \"$@\" --config {}",
            agent_bin().display(),
            config.display()
        ),
    );
    let p = lab.dir.join("luci.wilife");
    fs::write(&p, here).unwrap();
    p
}

/// rpcd's way: the plugin in the router, arguments on stdin; (exit status success, stdout as JSON).
fn rpcd(lab: &Lab, plugin: &Path, args: &[&str], stdin: &str) -> (bool, Value, Duration) {
    let start = Instant::now();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.router, "sh"])
        .arg(plugin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text:?}"));
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

#[test]
fn the_rpcd_plugin_answers_what_the_api_answers() {
    let mut lab = Lab::new();
    let text = lab
        .config(
            "upnp",
            &format!("config camera\n\toption name 'porch'\n\toption mac '{CAMERA_MAC}'\n"),
        )
        .replace(
            "option api_port",
            &format!("option api_token '{TOKEN}'\n\toption api_port"),
        );
    let cfg = lab.write_config("wilife", &text);
    lab.start_upnp_agent(&cfg);
    lab.say_hello_to_router(&lab.cc);
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 3600), 0);
    std::thread::sleep(Duration::from_millis(300));
    let plugin = plugin(&lab, &cfg);

    let (ok, list, _) = rpcd(&lab, &plugin, &["list"], "");
    assert!(ok);
    assert_eq!(
        list,
        json!({"status": {}, "diagnosis": {}, "mappings": {}, "cameras": {}, "outbound": {},
               "health": {}, "delete_mapping": {"protocol": "str", "port": 32}})
    );
    for (method, path) in [
        ("status", "/api/v1/status"),
        ("diagnosis", "/api/v1/diagnosis"),
        ("mappings", "/api/v1/mappings"),
        ("cameras", "/api/v1/cameras"),
        ("outbound", "/api/v1/outbound"),
    ] {
        let (ok, got, _) = rpcd(&lab, &plugin, &["call", method], "{}");
        assert!(ok, "{method}");
        assert_eq!(steady(got), steady(lab.api_get(path)), "{method}");
    }
    let (_, m, _) = rpcd(&lab, &plugin, &["call", "mappings"], "");
    assert_eq!(m["mappings"][0]["external_port"], 20570, "{m}");

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
    // Least privilege: reading never includes the one write method; every method is granted once.
    assert!(!read.contains(&json!("delete_mapping")));
    assert_eq!(write, &vec![json!("delete_mapping")]);
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
