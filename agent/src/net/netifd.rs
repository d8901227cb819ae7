//! Which device each OpenWrt logical network (`wan`, `lan`) is now, from netifd:
//! `ubus call network.interface dump`. procd only signals a running agent (it never restarts it for a
//! changed command line), so the daemon asks here itself, at start and on every SIGHUP.

use crate::config::Config;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

/// The largest dump read (a router with many interfaces answers a few tens of KB).
const MAX_DUMP: usize = 1 << 20;

/// One logical network as netifd reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub up: bool,
    /// The layer-3 device while up (`pppoe-wan` for PPPoE), as `network_get_device` reads it.
    pub l3_device: Option<String>,
    /// The configured device (also while down), as `network_get_physdev` reads it.
    pub device: Option<String>,
}

/// The device traffic of `network` uses: the L3 device while it is up, else the configured device (so a
/// WAN whose cable is out shows as "eth1 is down" rather than as unknown); `None` for an unknown network.
pub fn device_of(interfaces: &[Interface], network: &str) -> Option<String> {
    let i = interfaces.iter().find(|i| i.name == network)?;
    let l3 = i.l3_device.as_ref().filter(|_| i.up);
    l3.or(i.device.as_ref()).cloned()
}

/// Parses the answer of `ubus call network.interface dump`.
pub fn parse_dump(text: &str) -> Result<Vec<Interface>, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("netifd's answer is not JSON: {e}"))?;
    let list = v["interface"]
        .as_array()
        .ok_or("netifd's answer has no 'interface' list")?;
    let device = |i: &Value, key: &str| {
        i[key]
            .as_str()
            .and_then(|d| crate::config::parse_device(d).ok())
    };
    Ok(list
        .iter()
        .filter_map(|i| {
            Some(Interface {
                name: i["interface"].as_str()?.to_string(),
                up: i["up"].as_bool().unwrap_or(false),
                l3_device: device(i, "l3_device"),
                device: device(i, "device"),
            })
        })
        .collect())
}

/// Asks netifd over the `ubus` command line tool (`ubus` from PATH unless a path is given).
pub fn dump(ubus: &Path) -> Result<Vec<Interface>, String> {
    let out = Command::new(ubus)
        .args(["-t", "5", "call", "network.interface", "dump"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", ubus.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.trim().lines().next().unwrap_or("no message");
        return Err(format!("ubus call network.interface dump failed: {first}"));
    }
    if out.stdout.len() > MAX_DUMP {
        return Err("netifd's answer is too large".into());
    }
    parse_dump(&String::from_utf8_lossy(&out.stdout))
}

/// Gives `config` the devices its logical networks have now (only those the config does not pin; netifd
/// is not asked when both are pinned). An error leaves unpinned devices unknown and says why.
pub fn resolve(config: &mut Config, ubus: &Path) -> Result<(), String> {
    if !config.networks.need_resolving() {
        return Ok(());
    }
    let interfaces = dump(ubus)?;
    config.resolve_devices(|network| device_of(&interfaces, network));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape netifd answers with (trimmed): wan on PPPoE and up, lan up, a guest network down.
    const DUMP: &str = r#"{"interface":[
        {"interface":"lan","up":true,"pending":false,"available":true,"proto":"static","l3_device":"br-lan","device":"br-lan","ipv4-address":[{"address":"192.168.1.1","mask":24}]},
        {"interface":"wan","up":true,"proto":"pppoe","l3_device":"pppoe-wan","device":"eth1"},
        {"interface":"guest","up":false,"proto":"static","device":"br-guest"},
        {"interface":"wan6","up":false,"proto":"dhcpv6"},
        {"interface":"evil","up":true,"l3_device":"a/b","device":"x y"}
    ]}"#;

    #[test]
    fn devices_follow_netifd() {
        let i = parse_dump(DUMP).unwrap();
        assert_eq!(device_of(&i, "wan").as_deref(), Some("pppoe-wan"));
        assert_eq!(device_of(&i, "lan").as_deref(), Some("br-lan"));
        // Down: the configured device; no device at all: none; unknown network: none.
        assert_eq!(device_of(&i, "guest").as_deref(), Some("br-guest"));
        assert_eq!(device_of(&i, "wan6"), None);
        assert_eq!(device_of(&i, "nope"), None);
        // Names that are no device names are not taken.
        assert_eq!(device_of(&i, "evil"), None);
    }

    #[test]
    fn a_broken_answer_is_an_error() {
        assert!(parse_dump("").is_err());
        assert!(parse_dump("{}").is_err());
        assert!(parse_dump(r#"{"interface": 3}"#).is_err());
        assert_eq!(parse_dump(r#"{"interface": []}"#).unwrap(), vec![]);
    }
}
