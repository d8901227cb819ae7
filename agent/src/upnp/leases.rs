//! The port mappings granted over UPnP: plain values, their lease arithmetic, and their on-disk form.
//! The file is written atomically (temporary file, fsync, rename) so a crash leaves either the old or
//! the new table, never half of one; it lives in the state directory (tmpfs on OpenWrt) because a
//! mapping must not outlive the router's boot — the Command Center re-adds it when it starts.

use crate::config::PortRange;
use crate::firewall::{Forward, Origin};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// One granted mapping (always TCP, remote host wildcard: the policy allows nothing else).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub external_port: u16,
    pub internal_client: Ipv4Addr,
    pub internal_port: u16,
    pub description: String,
    pub enabled: bool,
    /// Unix seconds when first granted (a renewal keeps it).
    pub created: u64,
    /// Unix seconds when it expires; `None`: until removed.
    pub expires: Option<u64>,
    /// The lease the client asked for, seconds (0: "until removed" in v1).
    pub lease_requested: u32,
    /// IGD version of the call that made it (1 or 2).
    pub igd_version: u8,
    /// Which authorised host it belongs to: a Command Center's name, or "LAN host".
    pub owner: String,
}

impl Mapping {
    /// Seconds left, 0 for "until removed" (the UPnP convention for NewLeaseDuration).
    pub fn lease_left(&self, now: u64) -> u32 {
        self.expires.map_or(0, |e| {
            e.saturating_sub(now).clamp(1, u32::MAX as u64) as u32
        })
    }

    pub fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }

    /// The firewall forward this mapping stands for.
    pub fn forward(&self) -> Forward {
        Forward {
            external: PortRange::single(self.external_port),
            target: self.internal_client,
            target_port: (self.internal_port != self.external_port).then_some(self.internal_port),
            origin: Origin::Upnp,
        }
    }
}

/// The forwards of the enabled mappings, in port order.
pub fn forwards(mappings: &[Mapping]) -> Vec<Forward> {
    mappings
        .iter()
        .filter(|m| m.enabled)
        .map(Mapping::forward)
        .collect()
}

/// The earliest expiry among the mappings.
pub fn next_expiry(mappings: &[Mapping]) -> Option<u64> {
    mappings.iter().filter_map(|m| m.expires).min()
}

#[derive(Debug, Serialize, Deserialize)]
struct File {
    version: u32,
    mappings: Vec<Mapping>,
}

const FILE_VERSION: u32 = 1;

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("mappings.json")
}

/// Encodes the table (pure).
pub fn encode(mappings: &[Mapping]) -> String {
    serde_json::to_string_pretty(&File {
        version: FILE_VERSION,
        mappings: mappings.to_vec(),
    })
    .unwrap_or_default()
}

/// Decodes the table (pure): mappings in port order, duplicates refused.
pub fn decode(text: &str) -> Result<Vec<Mapping>, String> {
    let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if file.version != FILE_VERSION {
        return Err(format!(
            "version {} (this agent writes {FILE_VERSION})",
            file.version
        ));
    }
    let mut m = file.mappings;
    m.sort_by_key(|m| m.external_port);
    if m.windows(2)
        .any(|w| w[0].external_port == w[1].external_port)
    {
        return Err("the same external port is mapped twice".into());
    }
    Ok(m)
}

/// Writes the table atomically.
pub fn save(state_dir: &Path, mappings: &[Mapping]) -> std::io::Result<()> {
    let final_path = path(state_dir);
    let tmp = state_dir.join(".mappings.json.tmp");
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(encode(mappings).as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &final_path)
    })();
    if written.is_err() {
        // A full disk leaves no half-written temporary file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // The rename must reach the disk as well (a no-op on tmpfs, where it is cheap anyway).
    if let Ok(dir) = std::fs::File::open(state_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Reads the table; a missing file is an empty table, a damaged one an error (the caller keeps it aside).
pub fn load(state_dir: &Path) -> Result<Vec<Mapping>, String> {
    use std::io::Read;
    let file = match std::fs::File::open(path(state_dir)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    // The agent writes a few KB at most (mappings are capped per client); a larger file is not ours.
    let mut text = String::new();
    file.take(MAX_FILE as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() > MAX_FILE {
        return Err(format!("larger than {MAX_FILE} bytes"));
    }
    decode(&text)
}

/// The largest mapping file read back.
pub const MAX_FILE: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    pub fn mapping(port: u16, client: [u8; 4], expires: Option<u64>) -> Mapping {
        Mapping {
            external_port: port,
            internal_client: Ipv4Addr::from(client),
            internal_port: port,
            description: "WiLife".into(),
            enabled: true,
            created: 1000,
            expires,
            lease_requested: 0,
            igd_version: 1,
            owner: "office-pc".into(),
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let m = vec![
            mapping(20571, [192, 168, 1, 10], Some(5000)),
            mapping(20570, [192, 168, 1, 11], None),
        ];
        let back = decode(&encode(&m)).unwrap();
        assert_eq!(back[0], m[1]);
        assert_eq!(back[1], m[0]);
    }

    #[test]
    fn damaged_files_are_errors_not_guesses() {
        assert!(decode("{").is_err());
        assert!(decode(r#"{"version":2,"mappings":[]}"#)
            .unwrap_err()
            .contains("version 2"));
        let dup = encode(&[
            mapping(20570, [192, 168, 1, 10], None),
            mapping(20570, [192, 168, 1, 11], None),
        ]);
        assert!(decode(&dup).unwrap_err().contains("twice"));
    }

    #[test]
    fn lease_arithmetic() {
        let m = mapping(20570, [192, 168, 1, 10], Some(1100));
        assert_eq!(m.lease_left(1000), 100);
        assert_eq!(m.lease_left(1099), 1);
        assert!(!m.expired(1099));
        assert!(m.expired(1100));
        let forever = mapping(20571, [192, 168, 1, 10], None);
        assert_eq!(forever.lease_left(u64::MAX), 0);
        assert!(!forever.expired(u64::MAX));
        assert_eq!(next_expiry(&[m, forever]), Some(1100));
    }

    #[test]
    fn translated_ports_become_target_port() {
        let mut m = mapping(20571, [192, 168, 1, 10], None);
        assert_eq!(m.forward().target_port, None);
        m.internal_port = 20570;
        assert_eq!(m.forward().target_port, Some(20570));
        m.enabled = false;
        assert!(forwards(&[m]).is_empty());
    }

    #[test]
    fn save_and_load_atomically() {
        let dir = std::env::temp_dir().join(format!("wilife-leases-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(load(&dir).unwrap(), vec![]);
        let m = vec![mapping(20570, [192, 168, 1, 10], None)];
        save(&dir, &m).unwrap();
        assert_eq!(load(&dir).unwrap(), m);
        assert!(!dir.join(".mappings.json.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_oversized_file_is_not_read() {
        let dir = std::env::temp_dir().join(format!("wilife-leases-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(path(&dir), " ".repeat(MAX_FILE + 1)).unwrap();
        assert!(load(&dir).unwrap_err().contains("larger than"));
        // A save into a directory that cannot hold it leaves no temporary file.
        let gone = dir.join("missing");
        assert!(save(&gone, &[]).is_err());
        assert!(!gone.join(".mappings.json.tmp").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
