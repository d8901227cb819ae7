//! The remedy's I/O shell: the UCI files it reads, from the directory of the agent's own config
//! (`/etc/config` on a router).

use super::{plan, Files, Plan};
use crate::config::{uci, Config};
use crate::net::{switching, NetState};

/// The plan for the network as `net` shows it and the files beside `config.path`.
pub fn plan_for(config: &Config, net: &NetState) -> Result<Plan, String> {
    let report = switching::report(config, net);
    // Nothing to move: said without reading the files.
    let bypassed = |c: &switching::CameraSwitching| {
        (c.paths.iter()).any(|p| p.verdict == switching::Verdict::BypassedBySwitch)
    };
    if !report.iter().any(bypassed) {
        let none = Files {
            wilife: &[],
            network: &[],
            firewall: &[],
            dhcp: &[],
        };
        return plan(config, &report, &none);
    }
    let dir = config
        .path
        .parent()
        .unwrap_or(std::path::Path::new("/etc/config"));
    let read = |name: &str| -> Result<Vec<uci::Section>, String> {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        uci::parse(&text).map_err(|e| {
            let first = e.first().map(|e| format!("line {}: {}", e.line, e.message));
            format!(
                "{} is not valid UCI ({})",
                path.display(),
                first.unwrap_or_default()
            )
        })
    };
    let own = config
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("wilife");
    let (wilife, network, firewall, dhcp) = (
        read(own)?,
        read("network")?,
        read("firewall")?,
        read("dhcp")?,
    );
    plan(
        config,
        &report,
        &Files {
            wilife: &wilife,
            network: &network,
            firewall: &firewall,
            dhcp: &dhcp,
        },
    )
}
