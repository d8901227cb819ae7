//! Parsers of single option values: text in, a typed value or what would be valid out (the validator
//! adds the file, line, section and option). Pure.

use super::model::{Mac, PortRange};
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "yes" | "on" | "true" | "enabled" => Ok(true),
        "0" | "no" | "off" | "false" | "disabled" => Ok(false),
        _ => Err("is not a boolean: use '1' or '0'".into()),
    }
}

pub fn parse_port(v: &str) -> Result<u16, String> {
    match v.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) && !v.starts_with('+') => Ok(p as u16),
        _ => Err("is not a port: use a number from 1 to 65535".into()),
    }
}

pub fn parse_range(v: &str) -> Result<PortRange, String> {
    let (a, b) = v.split_once('-').unwrap_or((v, v));
    let bad = |_| "is not a port range: use FIRST-LAST, e.g. 20570-20575".to_string();
    let first = parse_port(a.trim()).map_err(bad)?;
    let last = parse_port(b.trim()).map_err(bad)?;
    if first > last {
        return Err(format!(
            "is reversed: the first port must not exceed the last ({last}-{first}?)"
        ));
    }
    Ok(PortRange { first, last })
}

/// The API's write token.
pub fn parse_token(v: &str) -> Result<String, String> {
    if v.len() < 16 || v.len() > 256 || !v.bytes().all(|b| b.is_ascii_graphic()) {
        Err("is not a usable token: 16-256 printable characters without spaces".into())
    } else {
        Ok(v.to_string())
    }
}

/// An OpenWrt logical network name (`wan`, `lan`, `iot_cams`).
pub fn parse_network_name(v: &str) -> Result<String, String> {
    if !v.is_empty() && v.len() <= 15 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(v.to_string())
    } else {
        Err("is not a network name (letters, digits and _, e.g. 'wan')".into())
    }
}

/// An absolute path; `example` shows one in the message.
pub fn parse_abs_path(v: &str, example: &str) -> Result<PathBuf, String> {
    if v.starts_with('/') {
        Ok(PathBuf::from(v))
    } else {
        Err(format!("is not an absolute path (e.g. {example})"))
    }
}

/// A unicast host address on the LAN.
pub fn parse_host_ip(v: &str) -> Result<Ipv4Addr, String> {
    let ip: Ipv4Addr = v
        .parse()
        .map_err(|_| "is not an IPv4 address (e.g. 192.168.1.10)".to_string())?;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
        return Err("is not a host address: use the PC's unicast LAN address".into());
    }
    Ok(ip)
}

pub fn parse_mac(v: &str) -> Result<Mac, String> {
    let bad = || "is not a MAC address (e.g. 00:11:22:33:44:55)".to_string();
    let parts: Vec<&str> = v.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(bad());
        }
        m[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if m == [0; 6] || m[0] & 1 == 1 {
        return Err("is not a unicast MAC address".into());
    }
    Ok(Mac(m))
}

/// A Linux network device name (IFNAMSIZ - 1 bytes, no slash or space).
pub fn parse_device(v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && v.len() <= 15
        && v != "."
        && v != ".."
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'"' && b != b'\\');
    if ok {
        Ok(v.to_string())
    } else {
        Err("is not a network device name (1-15 characters, no '/', quotes or spaces)".into())
    }
}

/// A UUID in its 8-4-4-4-12 hex form, stored lowercase.
pub fn parse_uuid(v: &str) -> Result<String, String> {
    let v = v.strip_prefix("uuid:").unwrap_or(v);
    let groups: Vec<&str> = v.split('-').collect();
    let ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(v.to_ascii_lowercase())
    } else {
        Err("is not a UUID (e.g. 4c1f3a52-9b1e-8d4a-a1b2-0123456789ab)".into())
    }
}

/// One connmark bit, decimal or 0x-hex.
pub fn parse_bit(v: &str) -> Result<u32, String> {
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => v.parse::<u32>(),
    };
    match n {
        Ok(n) if n.is_power_of_two() => Ok(n),
        _ => Err("is not a single bit: use one bit such as 0x10000000".into()),
    }
}

/// A whole number from `lo` to `hi`; `what` names it in the message ("a lease in seconds").
pub fn number_in(lo: u64, hi: u64, what: &'static str) -> impl Fn(&str) -> Result<u64, String> {
    move |v: &str| match v.parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) && !v.starts_with('+') => Ok(n),
        _ => Err(format!("is not {what}: use a number from {lo} to {hi}")),
    }
}
