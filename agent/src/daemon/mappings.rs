//! The owner's mapping changes: decided by the policy, committed to the firewall and then to the state
//! file before anyone is answered; restored at start; dropped when the config no longer allows them.

use super::reconcile::Trigger;
use super::Owner;
use crate::clock::unix_now;
use crate::firewall::apply::Rendered;
use crate::firewall::conntrack;
use crate::firewall::render::upnp;
use crate::net::rtnl;
use crate::owner::Outcome;
use crate::status::{Decision, Reconcile};
use crate::upnp::error::{Refusal, UpnpError};
use crate::upnp::leases::{self, Mapping};
use crate::upnp::policy::{self, Change, Effect, Scope};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

/// The connections each removed mapping had counted, by external port.
pub(super) type Counted = Vec<(u16, u64)>;

impl Owner {
    /// Runs one mapping change through the policy, and commits it to the firewall before answering.
    pub(super) fn change(&mut self, change: Change) -> Result<Outcome, Refusal> {
        let now = unix_now();
        if matches!(
            change,
            Change::Add(_) | Change::Delete { .. } | Change::DeleteRange { .. }
        ) {
            self.refresh_requester(change.requester());
        }
        // What the gateway upstream refuses (its worker publishes it) is refused here too.
        self.taken_upstream = self.shared.snapshot.lock().unwrap().upstream.taken.clone();
        let decided = match policy::decide(&self.scope(), &self.mappings, &change, now) {
            Ok(d) => d,
            Err(refusal) => {
                self.shared.record(Decision::refused(
                    change.requester(),
                    change.action(),
                    change.port(),
                    &refusal,
                ));
                return Err(refusal);
            }
        };
        if decided.affected.is_empty() {
            return Ok(Outcome::default());
        }
        let counted = self.commit(decided.table)?;
        let mut sessions_ended = 0;
        for m in &decided.affected {
            // A mapping that counted no connection has no session to end: the conntrack walk (the
            // whole table, ~10 ms in the lab) is spared. Unknown (a full apply ran, or the element was
            // not made by this process) means walk.
            let used = !counted.contains(&(m.external_port, 0));
            if decided.effect != Effect::Granted && used {
                sessions_ended += self.end_sessions(m.external_port);
            }
            self.shared
                .record(decision(&change, decided.effect, m, now));
        }
        Ok(Outcome {
            mappings: decided.affected,
            sessions_ended,
        })
    }

    /// Makes `table` the mapping table: firewall first, then the file; the old table stays if nft
    /// refuses. The connections each removed mapping had counted, where the kernel told them.
    pub(super) fn commit(&mut self, table: Vec<Mapping>) -> Result<Counted, Refusal> {
        let old = std::mem::replace(&mut self.mappings, table);
        let counted = self.enforce_mappings(Trigger::Mapping);
        if self.applied.is_none() {
            let why = self
                .shared
                .snapshot
                .lock()
                .unwrap()
                .last_reconcile
                .as_ref()
                .and_then(|r| r.error.clone())
                .unwrap_or_default();
            self.mappings = old;
            self.enforce_mappings(Trigger::Rollback);
            return Err(Refusal::new(
                UpnpError::ActionFailed,
                format!("the firewall refused the change: {why}"),
            ));
        }
        // Acknowledged means kept: a grant that cannot be saved is refused and taken back. A removal
        // stays (closing a port is never undone); its file is written again on every check until
        // that works.
        if let Err(why) = self.persist() {
            if !self.mappings.iter().any(|m| !old.contains(m)) {
                return Ok(counted);
            }
            // (The file still holds `old`: a failed save leaves it as it was.)
            self.mappings = old;
            self.enforce_mappings(Trigger::Rollback);
            return Err(Refusal::new(
                UpnpError::ActionFailed,
                format!("the mapping could not be saved, so it was not made: {why}"),
            ));
        }
        Ok(counted)
    }

    /// Puts the mapping table in force: while the kernel holds our last full apply, only the mappings
    /// differ from it, and they change as elements in one netlink transaction; otherwise (or if the
    /// kernel refuses that) by a full apply. What the kernel told of the mappings removed.
    fn enforce_mappings(&mut self, trigger: Trigger) -> Counted {
        if self.applied.is_none() || !upnp::active(&self.config) {
            self.reconcile(trigger);
            return Counted::new();
        }
        let started = Instant::now();
        let forwards = self.desired_forwards();
        let change = upnp::changes(&self.forwards, &forwards);
        let counted = match self.shared.nft.update(&self.netfilter, &change) {
            Ok(counted) => counted,
            Err(e) => {
                warning!("{e}; applying the whole table instead");
                self.reconcile(trigger);
                return Counted::new();
            }
        };
        let rendered = Rendered::of(&self.render(&forwards));
        if let Some(applied) = &mut self.applied {
            applied.rendered = rendered;
        }
        self.forwards = forwards;
        let mut snap = self.shared.snapshot.lock().unwrap();
        snap.forwards = self.forwards.clone();
        snap.mappings = self.mappings.clone();
        snap.last_reconcile = Some(Reconcile {
            at: unix_now(),
            reason: trigger.as_str().to_string(),
            result: "ok".to_string(),
            error: None,
            duration_ms: started.elapsed().as_millis() as u64,
        });
        counted
    }

    /// Conntrack entries of the port's granted flows go; the viewer is cut off at once.
    pub(super) fn end_sessions(&self, port: u16) -> usize {
        match conntrack::end_sessions(&self.netfilter, self.config.connmark, port) {
            Ok(n) => {
                if n > 0 {
                    info!("ended {n} live session(s) on port {port}");
                }
                n
            }
            Err(e) => {
                warning!("could not end live sessions on port {port}: {e} (the revoke rule still drops them)");
                0
            }
        }
    }

    /// Writes the mapping table; the outcome is published (/health is degraded while it fails).
    pub(super) fn persist(&self) -> Result<(), String> {
        let path = leases::path(&self.config.state_dir);
        let result = leases::save(&self.config.state_dir, &self.mappings)
            .map_err(|e| format!("{}: {e}", path.display()));
        let mut snap = self.shared.snapshot.lock().unwrap();
        match &result {
            Err(e) if snap.state_error.is_none() => {
                error!(
                    "could not save the mappings to {e}; new mappings are refused until it works"
                )
            }
            Ok(()) if snap.state_error.is_some() => info!("the mappings are saved again"),
            _ => {}
        }
        snap.state_error = result.as_ref().err().cloned();
        result
    }

    /// When the next lease ends, as an instant.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        let at = leases::next_expiry(&self.mappings)?;
        let now = unix_now();
        Some(Instant::now() + Duration::from_secs(at.saturating_sub(now)))
    }

    /// A grant or a removal rests on who the requester is now: its neighbour entry may be newer than
    /// the last rtnetlink event the owner has handled (an address taken over a moment ago). The kernel
    /// is asked for that one entry: a dump of every table would cost each change more, the more hosts
    /// the LAN has. A kernel that cannot answer (before 4.18) gets the whole read.
    fn refresh_requester(&mut self, ip: Ipv4Addr) {
        let devices: Vec<u32> = self
            .config
            .lan_devices
            .iter()
            .filter_map(|d| self.net.index_of(d))
            .collect();
        match rtnl::neighbour(&devices, ip) {
            Ok(entry) => {
                let now = SystemTime::now();
                self.net.put_neighbour(ip, entry.clone(), now);
                // What the API shows of the host (its presence) follows at once, as a full read's would.
                let mut snap = self.shared.snapshot.lock().unwrap();
                snap.net.put_neighbour(ip, entry, now);
            }
            Err(e) => {
                debug!("cannot ask the kernel for {ip}'s neighbour entry ({e}): reading all");
                self.network_changed();
            }
        }
    }

    /// What the policy knows of the network: the owner's last reading of it.
    pub(super) fn scope(&self) -> Scope<'_> {
        Scope {
            config: &self.config,
            lan_nets: &self.facts.lan_ipv4_nets,
            net: &self.net,
            taken_upstream: &self.taken_upstream,
        }
    }

    /// Drops mappings the current configuration no longer allows.
    pub(super) fn revalidate(&mut self, why: &str) {
        let (kept, dropped) = policy::revalidate(&self.scope(), &self.mappings);
        for (m, reason) in dropped {
            self.shared.record(Decision::done(
                m.internal_client,
                why,
                m.external_port,
                "removed",
                reason,
            ));
        }
        self.mappings = kept;
    }
}

/// The decision log's line for one mapping a change granted or took away.
pub(super) fn decision(change: &Change, effect: Effect, m: &Mapping, now: u64) -> Decision {
    let (client, result, reason) = match effect {
        Effect::Granted => {
            let lease = m.expires.map_or("until removed".to_string(), |e| {
                format!("lease {} s", e.saturating_sub(now))
            });
            (
                m.internal_client,
                "granted",
                format!(
                    "{} -> {}:{} for {} ({lease}, \"{}\")",
                    m.external_port, m.internal_client, m.internal_port, m.owner, m.description
                ),
            )
        }
        Effect::Removed => (
            change.requester(),
            "removed",
            format!(
                "{} -> {}:{}",
                m.external_port, m.internal_client, m.internal_port
            ),
        ),
        Effect::Expired => (
            m.internal_client,
            "expired",
            format!("the lease of {} ({}) ended", m.external_port, m.owner),
        ),
    };
    Decision::done(client, change.action(), m.external_port, result, reason)
}

impl Owner {
    /// The mappings saved by the previous run, minus those expired meanwhile or no longer allowed.
    pub(super) fn restore_mappings(&self) -> Vec<Mapping> {
        let config = &self.config;
        let now = unix_now();
        let loaded = match leases::load(&config.state_dir) {
            Ok(m) => m,
            Err(e) => {
                let path = leases::path(&config.state_dir);
                let aside = path.with_extension("json.bad");
                let _ = std::fs::rename(&path, &aside);
                error!(
                    "{} is damaged ({e}); kept aside as {} and starting with no mappings",
                    path.display(),
                    aside.display()
                );
                return Vec::new();
            }
        };
        let total = loaded.len();
        // The file is ours, but what it holds came from LAN clients: kept as plain text, as when granted.
        let live: Vec<Mapping> = loaded
            .into_iter()
            .filter(|m| !m.expired(now))
            .map(|m| Mapping {
                description: policy::plain_description(&m.description),
                ..m
            })
            .collect();
        let (kept, dropped) = policy::revalidate(&self.scope(), &live);
        for (m, why) in &dropped {
            notice!(
                "not restoring the mapping of port {}: {why}",
                m.external_port
            );
        }
        if total > 0 {
            info!(
                "restored {} of {total} saved mapping(s) from {}",
                kept.len(),
                leases::path(&config.state_dir).display()
            );
        }
        kept
    }
}
