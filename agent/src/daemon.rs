//! `wilife-agent run`: one thread owns the state and reconciles; the others only turn inputs into events
//! (signals, nftables change notifications) or serve the published snapshot (the API).

use crate::api;
use crate::clock::unix_now;
use crate::config::{self, Config, Overrides};
use crate::consts::NET_DEBOUNCE_MS;
use crate::consts::{DRIFT_DEBOUNCE_MS, MAX_RETRY_SECS, PERIODIC_CHECK_SECS};
use crate::firewall::apply::{Applied, Drift, Nft};
use crate::firewall::monitor::RulesetEvents;
use crate::firewall::{conntrack, render, static_forwards, Forward, NetFacts};
use crate::net::rtnl::{self, NetEvents};
use crate::net::{self, dhcp, NetState};
use crate::owner::{Event, Outcome, Shared};
use crate::status::{Decision, Fw4Include, Reconcile, Snapshot, UpnpStatus};
use crate::upnp::description::{uuid_from_mac, Identity};
use crate::upnp::error::{Refusal, UpnpError};
use crate::upnp::leases::{self, Mapping};
use crate::upnp::policy::{self, Change, Effect, Scope};
use crate::upnp::server::IgdRuntime;
use nix::sys::signal::{SigSet, Signal};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub struct Options {
    pub config_path: PathBuf,
    pub overrides: Overrides,
    /// The ubus command line tool, to ask netifd which devices the logical networks are.
    pub ubus: PathBuf,
    pub nft: PathBuf,
    pub fw4_include: PathBuf,
}

/// Why the tables are rendered and applied again (the API's `last_reconcile.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
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
    fn as_str(self) -> &'static str {
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

struct Owner {
    opts: Options,
    config: Config,
    shared: Arc<Shared>,
    applied: Option<Applied>,
    facts: NetFacts,
    forwards: Vec<Forward>,
    mappings: Vec<Mapping>,
    identity: Identity,
    /// When set, the last apply failed and is retried at this instant.
    retry_at: Option<Instant>,
    retry_delay: Duration,
    ruleset_event_pending: Arc<AtomicBool>,
    /// The last rtnetlink dump and DHCP leases (facts and presence come from them).
    net: NetState,
    dhcp_leases: Vec<dhcp::Lease>,
    net_event_pending: Arc<AtomicBool>,
    /// No rtnetlink events (subscription failed): the periodic check reads the network instead.
    net_events_missing: bool,
    /// The batch in force: an unchanged render is not applied again.
    last_tables: Option<render::Tables>,
    /// When a watched host would turn absent unless seen again: read the network then.
    presence_check_at: Option<SystemTime>,
}

/// Reads the config and gives it the devices its logical networks have now. A WAN that is down or
/// unknown is no error: camera isolation and the LAN side must not wait for the internet.
fn load_config(opts: &Options) -> Result<Config, config::ConfigErrors> {
    let mut c = config::load(&opts.config_path, &opts.overrides)?;
    if let Err(e) = net::netifd::resolve(&mut c, &opts.ubus) {
        warning!(
            "cannot ask netifd which devices the networks '{}' and '{}' are: {e}; pin them with \
             option wan_device / list lan_device",
            c.networks.wan_network,
            c.networks.lan_networks.join("', '")
        );
    }
    Ok(c)
}

/// The devices in force, for the log.
fn devices_line(c: &Config) -> String {
    let lans = if c.lan_devices.is_empty() {
        "none".to_string()
    } else {
        c.lan_devices.join(",")
    };
    format!(
        "wan {} ({}), lan {lans} ({})",
        c.wan_device.as_deref().unwrap_or("unknown"),
        c.networks.wan_network,
        c.networks.lan_networks.join(",")
    )
}

/// Runs until SIGTERM/SIGINT. A bad config is an error before anything is touched.
pub fn run(opts: Options) -> Result<(), String> {
    let config = load_config(&opts).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&config.state_dir).map_err(|e| {
        format!(
            "cannot create state_dir {}: {e}",
            config.state_dir.display()
        )
    })?;

    // Block the signals in every thread; one thread takes them synchronously with sigwait.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGINT] {
        signals.add(s);
    }
    signals
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;

    let (tx, rx) = channel();
    spawn_signal_thread(signals, tx.clone());
    let pending = Arc::new(AtomicBool::new(false));
    spawn_ruleset_monitor(tx.clone(), pending.clone());
    let net_pending = Arc::new(AtomicBool::new(false));
    let net_events_missing = !spawn_network_monitor(tx.clone(), net_pending.clone());

    let nft = Nft::new(opts.nft.clone());
    let shared = Arc::new(Shared {
        decisions: Mutex::new(VecDeque::new()),
        owner: Mutex::new(tx.clone()),
        snapshot: Mutex::new(Snapshot {
            started: Instant::now(),
            config: config.clone(),
            forwards: Vec::new(),
            facts: NetFacts::default(),
            mappings: Vec::new(),
            upnp: None,
            table_present: false,
            last_reconcile: None,
            restores: 0,
            fw4_include: include_status(&opts.fw4_include, config.connmark, None),
            reload_error: None,
            net: NetState::default(),
            dhcp_leases: Vec::new(),
            bridge_error: None,
            state_error: None,
        }),
        nft,
    });
    let mut owner = Owner {
        opts,
        config,
        shared: shared.clone(),
        applied: None,
        facts: NetFacts::default(),
        forwards: Vec::new(),
        mappings: Vec::new(),
        identity: Identity::default(),
        retry_at: None,
        retry_delay: Duration::from_secs(1),
        ruleset_event_pending: pending,
        net: NetState::default(),
        dhcp_leases: Vec::new(),
        net_event_pending: net_pending,
        net_events_missing,
        last_tables: None,
        presence_check_at: None,
    };
    let mut servers = api::Servers::default();
    let mut igd = IgdRuntime::default();
    info!(
        "starting {} (mode {:?}, {})",
        env!("CARGO_PKG_VERSION"),
        owner.config.direct_access,
        devices_line(&owner.config)
    );
    // The network first: restored mappings are judged, and the IGD named, on the same facts as the rest.
    owner.read_network();
    owner.identity = identity(&owner.config, &owner.net, unix_now() as u32);
    owner.mappings = owner.restore_mappings();
    owner.reconcile(Trigger::Startup);
    owner.sync_services(&mut servers, &mut igd);
    owner.publish_upnp(&igd);

    let mut next_check = Instant::now() + Duration::from_secs(PERIODIC_CHECK_SECS);
    let mut drift_check_at: Option<Instant> = None;
    loop {
        let mut deadline = owner.retry_at.map_or(next_check, |r| r.min(next_check));
        if let Some(at) = owner.next_expiry() {
            deadline = deadline.min(at);
        }
        if let Some(at) = drift_check_at {
            deadline = deadline.min(at);
        }
        if let Some(at) = owner.presence_check_at {
            let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
            deadline = deadline.min(Instant::now() + wait);
        }
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event::Stop(sig)) => {
                info!("{sig} received: removing table inet wilife and stopping");
                igd.stop();
                servers.stop();
                if let Err(e) = shared.nft.delete_table() {
                    error!("could not remove table inet wilife: {e}");
                }
                return Ok(());
            }
            Ok(Event::Reload) => {
                owner.reload();
                owner.sync_services(&mut servers, &mut igd);
            }
            Ok(Event::Upnp(change, reply)) => {
                let result = owner.change(change);
                let _ = reply.send(result);
            }
            Ok(Event::NetworkChanged) => {
                owner.net_event_pending.store(false, Ordering::SeqCst);
                owner.network_changed();
                // Addresses come and go: the listeners and SSDP follow at once.
                owner.sync_services(&mut servers, &mut igd);
            }
            Ok(Event::RulesetChanged) => {
                // Let a burst (fw4 reload, nft -f) finish, then look once; meanwhile keep serving.
                drift_check_at
                    .get_or_insert(Instant::now() + Duration::from_millis(DRIFT_DEBOUNCE_MS));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err("internal error: event channel closed".into())
            }
        }
        // Timers run after every event too, so a stream of requests cannot starve them.
        let now = Instant::now();
        if drift_check_at.is_some_and(|at| at <= now) {
            drift_check_at = None;
            owner.ruleset_event_pending.store(false, Ordering::SeqCst);
            owner.check();
        }
        if owner
            .presence_check_at
            .is_some_and(|at| at <= SystemTime::now())
        {
            owner.network_changed();
        }
        if owner.retry_at.is_some_and(|r| r <= now) {
            owner.reconcile(Trigger::Retry);
        }
        if leases::next_expiry(&owner.mappings).is_some_and(|at| at <= unix_now()) {
            // A refused commit is tried again at the next turn of the loop.
            let _ = owner.change(Change::Expire);
        }
        if next_check <= now {
            owner.check();
            // A table that could not be written (state directory full) is written again.
            if owner.shared.snapshot.lock().unwrap().state_error.is_some() {
                let _ = owner.persist();
            }
            owner.sync_services(&mut servers, &mut igd);
            next_check = Instant::now() + Duration::from_secs(PERIODIC_CHECK_SECS);
        }
        owner.publish_upnp(&igd);
    }
}

fn spawn_signal_thread(signals: SigSet, tx: Sender<Event>) {
    std::thread::spawn(move || loop {
        let ev = match signals.wait() {
            Ok(Signal::SIGHUP) => Event::Reload,
            Ok(sig) => Event::Stop(sig),
            Err(_) => continue,
        };
        if tx.send(ev).is_err() {
            return;
        }
    });
}

fn spawn_ruleset_monitor(tx: Sender<Event>, pending: Arc<AtomicBool>) {
    let events = match RulesetEvents::subscribe() {
        Ok(e) => e,
        Err(e) => {
            warning!("cannot subscribe to nftables change events ({e}); checking every {PERIODIC_CHECK_SECS} s only");
            return;
        }
    };
    std::thread::spawn(move || loop {
        if let Err(e) = events.wait() {
            warning!(
                "nftables change events failed ({e}); checking every {PERIODIC_CHECK_SECS} s only"
            );
            return;
        }
        // One queued event is enough: the owner reads the whole table when it gets to it.
        if !pending.swap(true, Ordering::SeqCst) && tx.send(Event::RulesetChanged).is_err() {
            return;
        }
    });
}

/// Wakes the owner on rtnetlink changes, a burst coalesced into one event. `false`: no events (the
/// periodic check then reads the network).
fn spawn_network_monitor(tx: Sender<Event>, pending: Arc<AtomicBool>) -> bool {
    let events = match NetEvents::subscribe() {
        Ok(e) => e,
        Err(e) => {
            warning!("cannot subscribe to rtnetlink events ({e}); reading the network every {PERIODIC_CHECK_SECS} s");
            return false;
        }
    };
    std::thread::spawn(move || loop {
        if let Err(e) = events.wait() {
            error!(
                "rtnetlink events failed ({e}); network changes are seen at the next check only"
            );
            return;
        }
        while events.wait_for(Duration::from_millis(NET_DEBOUNCE_MS)) {}
        if !pending.swap(true, Ordering::SeqCst) && tx.send(Event::NetworkChanged).is_err() {
            return;
        }
    });
    true
}

impl Owner {
    /// Renders the desired tables from config and facts and makes the kernel hold exactly them.
    fn reconcile(&mut self, trigger: Trigger) {
        let started = Instant::now();
        self.forwards = static_forwards(&self.config);
        if self.config.enabled && self.config.direct_access == config::DirectAccess::Upnp {
            self.forwards.extend(leases::forwards(&self.mappings));
        }
        let tables = render::render(&render::Desired {
            config: &self.config,
            forwards: &self.forwards,
            facts: &self.facts,
        });
        if trigger == Trigger::Network
            && self.applied.is_some()
            && self.last_tables.as_ref() == Some(&tables)
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
        self.last_tables = result.is_ok().then_some(tables);
        let duration_ms = started.elapsed().as_millis() as u64;
        let error = match result {
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
        };
        // A successful replace has just read the table back; only a failure leaves it to be asked.
        let present = error.is_none() || self.shared.nft.list_table().is_ok_and(|t| t.is_some());
        // fw4's chain is not ours to change; a mapping change need not ask nft about it again.
        let in_fw4 = if trigger == Trigger::Mapping {
            self.shared
                .snapshot
                .lock()
                .unwrap()
                .fw4_include
                .in_fw4_ruleset
        } else {
            self.shared
                .nft
                .fw4_accepts(self.config.connmark)
                .ok()
                .flatten()
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
    fn check(&mut self) {
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

    /// Reads links, addresses, neighbours and leases; derives the facts and publishes them.
    fn read_network(&mut self) {
        match rtnl::dump() {
            Ok(state) => self.net = state,
            Err(e) => warning!("cannot read the network over rtnetlink: {e}"),
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
        let timeout = Duration::from_secs(self.config.presence_timeout.into());
        // A little after the moment, so the host is surely past the timeout when read again.
        self.presence_check_at = net::next_absence(&self.net, &watched, timeout)
            .filter(|at| *at > SystemTime::now())
            .map(|at| at + Duration::from_millis(100));
        let mut snap = self.shared.snapshot.lock().unwrap();
        snap.net = self.net.clone();
        snap.dhcp_leases = self.dhcp_leases.clone();
    }

    /// An rtnetlink event (or a presence deadline): read the network; re-render if the facts moved.
    fn network_changed(&mut self) {
        let before = self.facts.clone();
        self.read_network();
        if self.facts != before {
            info!("network changed: re-rendering");
            self.reconcile(Trigger::Network);
        } else {
            self.shared.snapshot.lock().unwrap().facts = self.facts.clone();
        }
    }

    /// SIGHUP: a new config replaces the old only if it is valid; otherwise the old stays in force.
    fn reload(&mut self) {
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

impl Owner {
    /// Runs one mapping change through the policy, and commits it to the firewall before answering.
    fn change(&mut self, change: Change) -> Result<Outcome, Refusal> {
        let now = unix_now();
        if matches!(change, Change::Add(_)) {
            // A grant rests on who the requester is now: its neighbour entry may be newer than the
            // last rtnetlink event the owner has handled (an address taken over a moment ago).
            self.network_changed();
        }
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
        self.commit(decided.table)?;
        let mut sessions_ended = 0;
        for m in &decided.affected {
            if decided.effect != Effect::Granted {
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

    /// Makes `table` the mapping table: firewall first, then the file; the old table stays if nft refuses.
    fn commit(&mut self, table: Vec<Mapping>) -> Result<(), Refusal> {
        let old = std::mem::replace(&mut self.mappings, table);
        self.reconcile(Trigger::Mapping);
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
            self.reconcile(Trigger::Rollback);
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
                return Ok(());
            }
            // (The file still holds `old`: a failed save leaves it as it was.)
            self.mappings = old;
            self.reconcile(Trigger::Rollback);
            return Err(Refusal::new(
                UpnpError::ActionFailed,
                format!("the mapping could not be saved, so it was not made: {why}"),
            ));
        }
        Ok(())
    }

    /// Conntrack entries of the port's granted flows go; the viewer is cut off at once.
    fn end_sessions(&self, port: u16) -> usize {
        match conntrack::end_sessions(self.config.connmark, port) {
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
    fn persist(&self) -> Result<(), String> {
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
    fn next_expiry(&self) -> Option<Instant> {
        let at = leases::next_expiry(&self.mappings)?;
        let now = unix_now();
        Some(Instant::now() + Duration::from_secs(at.saturating_sub(now)))
    }

    /// What the policy knows of the network: the owner's last reading of it.
    fn scope(&self) -> Scope<'_> {
        Scope {
            config: &self.config,
            lan_nets: &self.facts.lan_ipv4_nets,
            net: &self.net,
        }
    }

    /// Brings the API and the IGD (listeners, SSDP) in line with the config and the addresses.
    fn sync_services(&self, servers: &mut api::Servers, igd: &mut IgdRuntime) {
        servers.sync(&self.config, &self.net, &self.shared);
        igd.sync(&self.config, &self.net, &self.identity, &self.shared);
    }

    /// Drops mappings the current configuration no longer allows.
    fn revalidate(&mut self, why: &str) {
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

    /// Publishes the IGD's state and sends changed events.
    fn publish_upnp(&self, igd: &IgdRuntime) {
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
}

/// The decision log's line for one mapping a change granted or took away.
fn decision(change: &Change, effect: Effect, m: &Mapping, now: u64) -> Decision {
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
    fn restore_mappings(&self) -> Vec<Mapping> {
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

/// The IGD's identity: the configured UUID, or one derived from the first LAN device's MAC address.
fn identity(config: &Config, net: &NetState, boot_id: u32) -> Identity {
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
