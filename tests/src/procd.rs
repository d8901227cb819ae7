//! The tests' procd: acts on what the `rc.common` stand-in notes (what procd.sh would send procd over
//! ubus) as OpenWrt's procd does (service/instance.c):
//! - `service set` with an instance that is not running starts it;
//! - a running instance whose definition changed in any way (command line, environment, the hash of a
//!   `file`, ...) only gets its `reload_signal` when it has one (it is never restarted, so a new
//!   command line never reaches it), and is restarted when it has none;
//! - an unchanged definition does nothing;
//! - `procd_send_signal` signals the running instance (SIGHUP unless told); stop ends it.
//!
//! Triggers are kept and fired on demand (`interface`, `config_change`), running their command as
//! procd does. `/etc/init.d/firewall reload` reloads the lab's fw4 ruleset, as fw4 would.

use crate::lab::Lab;
use crate::openwrt::Root;
use nix::sys::signal::Signal;
use std::fs;
use std::time::Duration;

/// What procd did with one batch of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Did {
    Started,
    Signalled(Signal),
    Restarted,
    Unchanged,
    Stopped,
    FirewallReloaded,
}

#[derive(Default)]
pub struct Procd {
    /// Lines of the log already acted on.
    seen: usize,
    /// The definition of the instance procd holds (its lines, triggers excluded).
    instance: Option<Vec<String>>,
    triggers: Vec<Vec<String>>,
}

impl Procd {
    /// Acts on the messages noted since the last call; what it did, in order.
    pub fn act(&mut self, lab: &mut Lab, root: &Root) -> Vec<Did> {
        let log = fs::read_to_string(&root.procd_log).unwrap();
        let lines: Vec<String> = log.lines().skip(self.seen).map(str::to_string).collect();
        self.seen += lines.len();
        let mut did = Vec::new();
        let mut it = lines.into_iter();
        while let Some(line) = it.next() {
            let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            match words.first().map(String::as_str) {
                Some("service") => {
                    let mut definition = Vec::new();
                    self.triggers.clear();
                    for l in it.by_ref() {
                        if l == "end" {
                            break;
                        }
                        match l.strip_prefix("trigger ") {
                            Some(t) => self
                                .triggers
                                .push(t.split_whitespace().map(str::to_string).collect()),
                            None => definition.push(l),
                        }
                    }
                    did.push(self.set(lab, root, definition));
                }
                Some("signal") if lab.agent_pid().is_some() => {
                    let sig = signal(words.get(3).map_or("HUP", String::as_str));
                    lab.signal_agent(sig);
                    did.push(Did::Signalled(sig));
                }
                Some("signal") => {}
                Some("kill") => {
                    if lab.agent_pid().is_some() {
                        lab.stop_agent();
                    }
                    self.instance = None;
                    did.push(Did::Stopped);
                }
                Some("event") if words.get(1).is_some_and(|e| e == "config.change") => {
                    let package = words.get(2).cloned().unwrap_or_default();
                    did.extend(self.config_change(lab, root, &package));
                }
                Some("firewall") => {
                    lab.load_fw4();
                    did.push(Did::FirewallReloaded);
                }
                _ => panic!("procd stand-in: cannot read {line:?}\n{log}"),
            }
        }
        did
    }

    /// `ubus call service set`: start, signal, restart or nothing.
    fn set(&mut self, lab: &mut Lab, root: &Root, definition: Vec<String>) -> Did {
        let running = lab.agent_pid().is_some();
        let changed = self.instance.as_ref() != Some(&definition);
        let reload_signal = definition
            .iter()
            .find_map(|l| l.strip_prefix("param reload_signal "))
            .map(signal);
        let did = match (running, changed, reload_signal) {
            (false, _, _) => {
                start(lab, root, &definition);
                Did::Started
            }
            (true, false, _) => Did::Unchanged,
            (true, true, Some(sig)) => {
                lab.signal_agent(sig);
                Did::Signalled(sig)
            }
            (true, true, None) => {
                lab.stop_agent();
                start(lab, root, &definition);
                Did::Restarted
            }
        };
        self.instance = Some(definition);
        did
    }

    /// Fires the triggers on an `interface.*` event of `network` (netifd: ifup, ifdown, device
    /// change), running each matching command as procd does, then acts on what it sent.
    pub fn interface_event(&mut self, lab: &mut Lab, root: &Root, network: &str) -> Vec<Did> {
        self.fire(lab, root, |t| {
            t.first().is_some_and(|e| e.starts_with("interface."))
                && t.get(1).is_some_and(|n| n == network)
        })
    }

    /// `config.change` of `package` (reload_config, LuCI's Save & Apply, rpcd's uci commit): the
    /// triggers of the service holding `procd_add_reload_trigger package`.
    pub fn config_change(&mut self, lab: &mut Lab, root: &Root, package: &str) -> Vec<Did> {
        self.fire(lab, root, |t| {
            t.first().is_some_and(|e| e == "config.change")
                && t.get(1).is_some_and(|p| p == package)
        })
    }

    fn fire(
        &mut self,
        lab: &mut Lab,
        root: &Root,
        matches: impl Fn(&[String]) -> bool,
    ) -> Vec<Did> {
        let commands: Vec<Vec<String>> = self
            .triggers
            .iter()
            .filter(|t| matches(t))
            .map(|t| t[2..].to_vec())
            .collect();
        let mut did = Vec::new();
        for command in commands {
            // procd runs the init script, whose interpreter line is `/bin/sh /etc/rc.common`.
            let mut args = vec!["/etc/rc.common"];
            args.extend(command.iter().map(String::as_str));
            root.ash(lab, &args);
            did.extend(self.act(lab, root));
        }
        did
    }
}

/// Starts the instance as procd does: its command line, procd's PATH, nothing of the test's own.
fn start(lab: &mut Lab, root: &Root, definition: &[String]) {
    let command: Vec<String> = definition
        .iter()
        .find_map(|l| l.strip_prefix("command "))
        .expect("an instance has a command")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let path = format!(
        "{}:/usr/sbin:/usr/bin:/sbin:/bin",
        crate::openwrt::stubs().display()
    );
    let env: Vec<(String, String)> = root.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.push(("PATH", &path));
    lab.spawn_installed_agent(&command, &root.dir, &all);
    lab.wait_log("API listening on http://127.0.0.1", Duration::from_secs(15));
}

fn signal(name: &str) -> Signal {
    match name {
        "HUP" | "1" => Signal::SIGHUP,
        "TERM" | "15" => Signal::SIGTERM,
        "USR1" | "10" => Signal::SIGUSR1,
        other => panic!("procd stand-in: signal {other}?"),
    }
}
