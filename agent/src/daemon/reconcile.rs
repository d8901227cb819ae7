//! The owner keeps the firewall in line with the config and the network: render, apply, verify, restore
//! what someone else removed, follow the network and the config file.

use super::{devices_line, load_config, Owner};
use crate::clock::unix_now;
use crate::config::{self, Config};
use crate::consts::MAX_RETRY_SECS;
use crate::firewall::apply::{Applied, Drift, FirewallError, Rendered};
use crate::firewall::render::{self, upnp, Tables};
use crate::firewall::{static_forwards, Forward};
use crate::net::{self, dhcp, rtnl, NetState};
use crate::status::{Fw4Include, Reconcile, UpnpStatus};
use crate::upnp::description::{uuid_from_mac, Identity};
use crate::upnp::leases;
use crate::upnp::server::IgdRuntime;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

/// Why the tables are rendered and applied again (the API's `last_reconcile.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    Startup,
    Reload,
    /// The facts moved (addresses, cameras' learned addresses).
    Network,
    /// A mapping change of the IGD, the API or the lease clock.
    Mapping,
    /// A mapping change taken back (the firewall or the disk refused it).
    Rollback,
    /// The last apply failed.
    Retry,
    /// Someone removed or changed our tables.
    Restore,
}

impl Trigger {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Reload => "reload",
            Trigger::Network => "network",
            Trigger::Mapping => "upnp",
            Trigger::Rollback => "rollback",
            Trigger::Retry => "retry",
            Trigger::Restore => "restore",
        }
    }
}

impl Owner {
    /// Renders the desired tables from config and facts and makes the kernel hold exactly them.
    pub(super) fn reconcile(&mut self, trigger: Trigger) {
        let started = Instant::now();
        self.forwards = self.desired_forwards();
        let tables = self.render(&self.forwards);
        if trigger == Trigger::Network
            && self
                .applied
                .as_ref()
                .is_some_and(|a| a.rendered == Rendered::of(&tables))
        {
            // New facts, same rules (a neighbour that is no camera, an address nothing uses).
            self.shared.snapshot.lock().unwrap().facts = self.facts.clone();
            return;
        }
        let result = self.shared.nft.replace(&tables);
        let bridge_error = result.as_ref().ok().and_then(|a| a.bridge_refused.clone());
        if let Some(e) = &bridge_error {
            error!("camera rules between bridge ports refused ({e}); everything else is in force. Cameras on the same bridge as the PC need the kernel's nftables bridge family (kmod-nft-bridge)");
        }
        let duration_ms = started.elapsed().as_millis() as u64;
        let error = self.settle(trigger, result, duration_ms);
        self.publish_reconcile(trigger, error, bridge_error, duration_ms);
    }

    /// The forwards the config and the mappings ask for.
    pub(super) fn desired_forwards(&self) -> Vec<Forward> {
        let mut forwards = static_forwards(&self.config);
        if upnp::active(&self.config) {
            forwards.extend(leases::forwards(&self.mappings));
        }
        forwards
    }

    /// Our tables for the config, the facts and `forwards`.
    pub(super) fn render(&self, forwards: &[Forward]) -> Tables {
        render::render(&render::Desired {
            config: &self.config,
            forwards,
            facts: &self.facts,
        })
    }

    /// Takes the apply's outcome: in force, or retried later with a doubling delay. The error, if any.
    fn settle(
        &mut self,
        trigger: Trigger,
        result: Result<Applied, FirewallError>,
        duration_ms: u64,
    ) -> Option<String> {
        match result {
            Ok(applied) => {
                self.applied = Some(applied);
                self.retry_at = None;
                self.retry_delay = Duration::from_secs(1);
                info!(
                    "table inet wilife applied ({}): {} forward(s), {duration_ms} ms",
                    trigger.as_str(),
                    self.forwards.len()
                );
                None
            }
            Err(e) => {
                self.applied = None;
                error!(
                    "could not apply table inet wilife ({}): {e}; retrying in {} s",
                    trigger.as_str(),
                    self.retry_delay.as_secs()
                );
                self.retry_at = Some(Instant::now() + self.retry_delay);
                self.retry_delay = (self.retry_delay * 2).min(Duration::from_secs(MAX_RETRY_SECS));
                Some(e.to_string())
            }
        }
    }

    /// Publishes what the reconcile left in force, and how it went.
    fn publish_reconcile(
        &self,
        trigger: Trigger,
        error: Option<String>,
        bridge_error: Option<String>,
        duration_ms: u64,
    ) {
        // A successful replace has just read the table back; only a failure leaves it to be asked.
        let present = error.is_none() || self.shared.nft.list_table().is_ok_and(|t| t.is_some());
        // fw4's chain is not ours to change; a mapping change need not ask nft about it again.
        let in_fw4 = if trigger == Trigger::Mapping {
            let snap = self.shared.snapshot.lock().unwrap();
            snap.fw4_include.in_fw4_ruleset
        } else {
            let accepts = self.shared.nft.fw4_accepts(self.config.connmark);
            accepts.ok().flatten()
        };
        let mut snap = self.shared.snapshot.lock().unwrap();
        snap.bridge_error = bridge_error;
        snap.config = self.config.clone();
        snap.forwards = self.forwards.clone();
        snap.facts = self.facts.clone();
        snap.mappings = self.mappings.clone();
        snap.table_present = present;
        snap.fw4_include = include_status(&self.opts.fw4_include, self.config.connmark, in_fw4);
        snap.last_reconcile = Some(Reconcile {
            at: unix_now(),
            reason: trigger.as_str().to_string(),
            result: if error.is_none() { "ok" } else { "error" }.to_string(),
            error,
            duration_ms,
        });
    }

    /// Is the kernel still holding what we applied, and are the facts unchanged? Restore if not.
    pub(super) fn check(&mut self) {
        if self.net_events_missing {
            self.network_changed();
        }
        let Some(applied) = &self.applied else {
            // The last apply failed: the retry timer takes care of it.
            return;
        };
        match self.shared.nft.drift(applied) {
            Ok(Drift::InForce) => {
                let in_fw4 = self
                    .shared
                    .nft
                    .fw4_accepts(self.config.connmark)
                    .ok()
                    .flatten();
                let mut snap = self.shared.snapshot.lock().unwrap();
                snap.table_present = true;
                snap.fw4_include =
                    include_status(&self.opts.fw4_include, self.config.connmark, in_fw4);
            }
            Ok(drift) => {
                let what = if drift == Drift::Missing {
                    "was removed"
                } else {
                    "was changed"
                };
                warning!("table inet wilife {what} by someone else (firewall restart or manual nft?): restoring it");
                self.shared.snapshot.lock().unwrap().restores += 1;
                self.reconcile(Trigger::Restore);
            }
            Err(e) => warning!("cannot read table inet wilife back: {e}"),
        }
    }

    /// Says in the log, once per change, where a camera's traffic passes the rules by (or no longer
    /// does); a path first seen enforced is no news.
    fn log_switching(&mut self) {
        use net::switching::Verdict;
        let mut said = Vec::new();
        for cam in net::switching::report(&self.config, &self.net) {
            for p in cam.paths {
                let key = (cam.mac.clone(), p.peer, p.name.clone());
                let before = (self.switching_said.iter())
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| *v);
                let news = match before {
                    _ if p.verdict == Verdict::Unknown => false,
                    None => p.verdict != Verdict::Enforced,
                    Some(v) => v != p.verdict,
                };
                if news && p.verdict == Verdict::Enforced {
                    notice!("{}", p.message);
                } else if news {
                    warning!("{}", p.message);
                }
                // Unknown (a port not seen for a while) keeps the last verdict said.
                let keep = if p.verdict == Verdict::Unknown {
                    before
                } else {
                    Some(p.verdict)
                };
                said.extend(keep.map(|v| (key, v)));
            }
        }
        self.switching_said = said;
    }

    /// Reads links, addresses, neighbours and leases; derives the facts and publishes them.
    pub(super) fn read_network(&mut self) {
        let fdb = rtnl::Watched::of(&self.config);
        // The FDB only when a watched host's entry changed (or for presence, a reload, the periodic
        // check): a flooded FDB is long to list, and its other entries are of no one we watch.
        let with_fdb = self.fdb_changed.swap(false, Ordering::SeqCst)
            || self.fdb_due.is_some_and(|t| t <= Instant::now())
            || self.fdb_read_at.is_none_or(|t| {
                t.elapsed() >= Duration::from_secs(crate::consts::FDB_REFRESH_SECS)
            });
        match rtnl::dump(&fdb, with_fdb) {
            Ok(mut state) => {
                if with_fdb {
                    self.fdb_read_at = Some(Instant::now());
                    self.fdb_due = None;
                } else {
                    // The entries read before, aged by the time since (ages count from a dump).
                    let since = (state.taken_at.zip(self.net.taken_at))
                        .and_then(|(now, then)| now.duration_since(then).ok())
                        .unwrap_or_default();
                    state.bridge_fdb = std::mem::take(&mut self.net.bridge_fdb);
                    state.bridge_fdb.iter_mut().for_each(|s| s.age += since);
                    state.fdb_other_hosts = std::mem::take(&mut self.net.fdb_other_hosts);
                }
                net::sysfs::switching(&mut state.links, &self.net.links);
                self.net = state;
                self.log_switching();
            }
            Err(e) => {
                self.fdb_changed.store(with_fdb, Ordering::SeqCst);
                warning!("cannot read the network over rtnetlink: {e}");
            }
        }
        self.dhcp_leases = dhcp::read(&self.config.dhcp_leases, unix_now());
        self.facts = net::facts(&self.config, &self.net, &self.dhcp_leases);
        // Cameras and Command Centers (by MAC, or the MAC the neighbour table has for the IP).
        let cc_macs = self
            .config
            .command_centers
            .iter()
            .filter_map(|cc| self.net.command_center_mac(cc));
        let watched: Vec<config::Mac> = self
            .config
            .cameras
            .iter()
            .map(|c| c.mac)
            .chain(cc_macs)
            .collect();
        // The monitor passes on FDB events of these MACs only. A newly watched one (a Command
        // Center's MAC, once the ARP table has it) had its FDB events ignored until now.
        let newcomer = {
            let mut known = self.fdb_watched.lock().unwrap();
            let newcomer = watched.iter().any(|m| !known.contains(m));
            *known = watched.clone();
            newcomer
        };
        let timeout = Duration::from_secs(self.config.presence_timeout.into());
        // A little after the moment, so the host is surely past the timeout when read again.
        self.presence_check_at = net::next_absence(&self.net, &watched, timeout)
            .filter(|at| *at > SystemTime::now())
            .map(|at| at + Duration::from_millis(100));
        {
            let mut snap = self.shared.snapshot.lock().unwrap();
            snap.net = self.net.clone();
            snap.dhcp_leases = self.dhcp_leases.clone();
        }
        // Its FDB entry is read now, or (forged ARP answers could flap it) when the last reading is
        // a few seconds old.
        let gap = Duration::from_secs(crate::consts::FDB_NEWCOMER_SECS);
        let wait = (self.fdb_read_at).map_or(Duration::ZERO, |t| gap.saturating_sub(t.elapsed()));
        if newcomer && !with_fdb && wait.is_zero() {
            self.fdb_changed.store(true, Ordering::SeqCst);
            self.read_network();
        } else if newcomer && !with_fdb {
            self.fdb_due = Some(Instant::now() + wait);
            let at = SystemTime::now() + wait;
            self.presence_check_at = Some(self.presence_check_at.map_or(at, |p| p.min(at)));
        }
    }

    /// An rtnetlink event (or a presence deadline): read the network; re-render if the facts moved.
    pub(super) fn network_changed(&mut self) {
        let before = self.facts.clone();
        self.read_network();
        if self.facts != before {
            info!("network changed: re-rendering");
            self.reconcile(Trigger::Network);
        } else {
            self.shared.snapshot.lock().unwrap().facts = self.facts.clone();
        }
    }

    /// Publishes the IGD's state and sends changed events.
    pub(super) fn publish_upnp(&self, igd: &IgdRuntime) {
        let active = self.config.enabled && self.config.direct_access == config::DirectAccess::Upnp;
        {
            let mut snap = self.shared.snapshot.lock().unwrap();
            snap.mappings = self.mappings.clone();
            snap.upnp = active.then(|| UpnpStatus {
                uuid: self.identity.uuid.clone(),
                description_port: self.config.upnp.port,
                mappings: self.mappings.len(),
                subscriptions: igd.subscriptions(),
            });
        }
        igd.publish(&self.shared);
    }

    /// SIGHUP: a new config replaces the old only if it is valid; otherwise the old stays in force.
    pub(super) fn reload(&mut self) {
        match load_config(&self.opts) {
            Ok(new) => {
                if new.state_dir != self.config.state_dir {
                    if let Err(e) = std::fs::create_dir_all(&new.state_dir) {
                        error!(
                            "reload refused: cannot create state_dir {}: {e}",
                            new.state_dir.display()
                        );
                        self.shared.snapshot.lock().unwrap().reload_error = Some(e.to_string());
                        return;
                    }
                }
                notice!(
                    "configuration reloaded from {} ({})",
                    self.opts.config_path.display(),
                    devices_line(&new)
                );
                self.config = new;
                self.identity = identity(&self.config, &self.net, self.identity.boot_id);
                self.shared.snapshot.lock().unwrap().reload_error = None;
                // Other hosts may be watched now.
                self.fdb_changed.store(true, Ordering::SeqCst);
                self.read_network();
                self.revalidate("configuration reload");
                self.reconcile(Trigger::Reload);
                let _ = self.persist();
            }
            Err(e) => {
                for one in e.iter() {
                    error!("reload refused, the previous configuration stays in force: {one}");
                }
                self.shared.snapshot.lock().unwrap().reload_error = Some(e.to_string());
            }
        }
    }
}

/// The IGD's identity: the configured UUID, or one derived from the first LAN device's MAC address.
pub(super) fn identity(config: &Config, net: &NetState, boot_id: u32) -> Identity {
    let mac = config
        .lan_devices
        .iter()
        .find_map(|d| net.link_mac(d))
        .map(|m| m.0);
    let uuid = config.upnp.uuid.clone().unwrap_or_else(|| {
        uuid_from_mac(mac.unwrap_or_else(|| {
            // No MAC (a device without one): the device names still tell routers apart poorly but
            // stably.
            let mut m = [2u8, 0, 0, 0, 0, 0];
            for (i, b) in config.lan_devices.join(",").bytes().enumerate() {
                m[1 + i % 5] ^= b;
            }
            m
        }))
    });
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    Identity {
        uuid,
        friendly_name: format!("WiLife gateway ({})", host.trim()),
        boot_id,
        config_id: 1,
    }
}

/// Reads the installed fw4 include and says whether it accepts our bit.
pub fn include_status(path: &std::path::Path, connmark: u32, in_fw4: Option<bool>) -> Fw4Include {
    let text = std::fs::read_to_string(path).ok();
    let needle = format!("ct mark & 0x{connmark:08x} == 0x{connmark:08x}");
    Fw4Include {
        path: path.display().to_string(),
        present: text.is_some(),
        matches_connmark: text.is_some_and(|t| {
            t.lines().any(|l| {
                !l.trim_start().starts_with('#') && l.contains(&needle) && l.contains("accept")
            })
        }),
        in_fw4_ruleset: in_fw4,
    }
}
