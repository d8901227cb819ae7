//! Issue 30: every command README.md and docs/ show is run by a test, so none rots. This file says who
//! runs each one (and fails for a command nobody runs), runs the PC-side ones of the API guide against
//! an agent in the lab, and runs the demo; the router-side ones run in `package.rs`
//! (`the_docs_router_commands_run_on_an_installed_router`), CI's own in tests/run.sh.

use serde_json::Value;
use std::fs;
use wilife_lab::docs::{shown, Shell, Shown, PACKAGE_MANAGER};
use wilife_lab::lab::*;

/// PC commands no test runs, and why.
const BY_HAND: &[(&str, &str)] = &[(
    "bash tests/bench/run.sh",
    "the benchmarks give figures, not verdicts: half an hour on a quiet machine",
)];

fn normalized(command: &str) -> String {
    (command.split_whitespace())
        .filter(|w| *w != "--locked")
        .collect::<Vec<_>>()
        .join(" ")
}

fn read(path: &str) -> String {
    fs::read_to_string(repo_root().join(path)).unwrap()
}

/// Who runs a command the docs show; None: nobody.
fn runner(s: &Shown) -> Option<String> {
    let c = s.command.as_str();
    let ci = read("tests/run.sh");
    let words: Vec<&str> = c.split_whitespace().collect();
    match s.shell {
        Shell::Router if PACKAGE_MANAGER.contains(&c) => {
            Some("OpenWrt's package manager (names checked)".into())
        }
        Shell::Router => {
            Some("package::the_docs_router_commands_run_on_an_installed_router".into())
        }
        Shell::Pc if c == "bash tests/run.sh" => read(".ci/run")
            .contains("exec bash tests/run.sh")
            .then(|| ".ci/run".into()),
        Shell::Pc if c == "bash tests/demo.sh" => Some("docs::the_demo_runs".into()),
        Shell::Pc if ci.lines().any(|l| normalized(l) == normalized(c)) => {
            Some("tests/run.sh".into())
        }
        Shell::Pc if words.starts_with(&["bash", "openwrt-package/build-packages.sh"]) => {
            // CI builds every target; a target named is one of them.
            let all = read("openwrt-package/arches.sh");
            let all = all
                .lines()
                .find_map(|l| l.strip_prefix("all_targets="))
                .unwrap();
            (words[2..]
                .iter()
                .all(|t| all.split(['"', ' ']).any(|known| known == *t))
                && ci
                    .lines()
                    .any(|l| l == "bash openwrt-package/build-packages.sh"))
            .then(|| "tests/run.sh (every target)".into())
        }
        Shell::Pc if c.ends_with("bash tests/fuzz.sh") || c.contains("bash tests/fuzz.sh ") => {
            let targets = c.split("tests/fuzz.sh").nth(1).unwrap().split_whitespace();
            let known = |t: &str| {
                repo_root()
                    .join(format!("agent/fuzz/fuzz_targets/{t}.rs"))
                    .exists()
            };
            let env_ok = !c.contains('=') || read("tests/fuzz.sh").contains("FUZZ_SECONDS");
            (targets.into_iter().all(known) && env_ok && ci.contains("bash tests/fuzz.sh"))
                .then(|| "tests/run.sh (tests/fuzz.sh)".into())
        }
        Shell::Pc if c.starts_with("WILIFE_KEEP_LAB=1 cargo test -p wilife-lab --test ") => {
            let test = c.rsplit(' ').next().unwrap();
            (repo_root().join(format!("tests/tests/{test}.rs")).exists()
                && read("tests/src/lab/mod.rs").contains("WILIFE_KEEP_LAB")
                && ci.contains("cargo test --workspace"))
            .then(|| "tests/run.sh (cargo test --workspace)".into())
        }
        Shell::Pc if is_api_command(c) => {
            Some("docs::the_api_guides_commands_answer_from_an_agent".into())
        }
        Shell::Pc => BY_HAND
            .iter()
            .find(|(command, _)| *command == c)
            .map(|(_, why)| format!("nobody: {why}")),
    }
}

fn is_api_command(c: &str) -> bool {
    ["curl ", "upnpc ", "TOKEN=$(ssh "]
        .iter()
        .any(|p| c.starts_with(p))
}

#[test]
fn every_command_the_docs_show_is_run_by_a_test() {
    let all = shown();
    assert!(all.len() > 40, "{} commands", all.len());
    let mut nobody = Vec::new();
    for s in &all {
        match runner(s) {
            Some(who) => eprintln!("{s}\n    run by {who}"),
            None => nobody.push(s.to_string()),
        }
    }
    assert!(
        nobody.is_empty(),
        "no test runs these:\n{}",
        nobody.join("\n")
    );
    // Each exception is still shown somewhere (else the list is stale).
    for (command, _) in BY_HAND {
        assert!(all.iter().any(|s| s.command == *command), "{command}");
    }
    for command in PACKAGE_MANAGER {
        assert!(all.iter().any(|s| s.command == *command), "{command}");
    }
}

#[test]
fn the_demo_runs() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_demo"))
        .output()
        .expect("the demo binary");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("direct"), "{text}");
}

/// The API guide's commands for a PC on the LAN (curl, upnpc), as shown, against an agent in the lab:
/// the router's address is the lab's, and the token comes from the lab's file instead of over ssh.
#[test]
fn the_api_guides_commands_answer_from_an_agent() {
    let mut lab = Lab::new();
    let token = "docs-test-token-0123456789";
    let text = lab.config("upnp", "");
    lab.set_token(token);
    let cfg = lab.write_config("wilife", &text);
    lab.start_upnp_agent(&cfg);
    let _cc = lab.echo_server(&lab.cc.clone(), 20570, "cc");
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 0), 0);
    let commands: Vec<Shown> = shown()
        .into_iter()
        .filter(|s| s.shell == Shell::Pc && is_api_command(&s.command))
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");
    let router = LAN_IP.to_string();
    let token_file = lab.token_file().display().to_string();
    for s in &commands {
        let command = s
            .command
            .replace(
                "ssh root@192.168.1.1 cat /etc/wilife/api_token",
                &format!("cat {token_file}"),
            )
            .replace("192.168.1.1", &router);
        // Each line in a shell of its own, with the TOKEN the guide's first step sets.
        let script = format!("TOKEN='{token}'\n{command}\nprintf '\\n%s' \"$TOKEN\"");
        let out = lab.exec(&lab.cc, &["bash", "-c", &script]);
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{s}\n{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (answer, kept) = said.rsplit_once('\n').unwrap();
        assert_eq!(kept, token, "{s}");
        if command.starts_with("curl ") && command.contains("/api/v1") {
            let json = answer.trim_end().trim_end_matches(char::is_numeric);
            let v: Value =
                serde_json::from_str(json).unwrap_or_else(|e| panic!("{s}: {e}\n{answer}"));
            assert!(v.is_object(), "{s}: {answer}");
            if command.contains("-X DELETE") {
                assert_eq!(v["removed"][0]["external_port"], 20570, "{s}: {answer}");
            }
        } else if command.starts_with("curl ") {
            assert!(answer.contains("InternetGatewayDevice"), "{s}: {answer}");
        } else if command.starts_with("upnpc ") {
            assert!(
                answer.contains("IGD") || answer.contains("ExternalIPAddress"),
                "{s}: {answer}"
            );
        }
    }
}
