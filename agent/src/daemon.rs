//! `wilife-agent run`: one thread owns the state and reconciles; the others only turn inputs into events
//! (signals, nftables change notifications) or serve the published snapshot (the API).

use crate::config::{self, Config, Overrides};
use crate::consts::{DRIFT_DEBOUNCE_MS, MAX_RETRY_SECS, PERIODIC_CHECK_SECS};
use crate::firewall::apply::{Applied, Drift, Nft};
use crate::firewall::monitor::RulesetEvents;
use crate::firewall::{render, static_forwards, Forward, NetFacts};
use crate::status::{Fw4Include, Reconcile, Snapshot};
use crate::{api, netinfo};
use nix::sys::signal::{SigSet, Signal};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub struct Options {
    pub config_path: PathBuf,
    pub overrides: Overrides,
    pub nft: PathBuf,
    pub fw4_include: PathBuf,
}

enum Event {
    Reload,
    Stop(Signal),
    RulesetChanged,
}

/// State shared with the API threads: the snapshot (written only by the owner) and the nft runner.
pub struct Shared {
    pub snapshot: Mutex<Snapshot>,
    pub nft: Nft,
}

struct Owner {
    opts: Options,
    config: Config,
    shared: Arc<Shared>,
    applied: Option<Applied>,
    facts: NetFacts,
    forwards: Vec<Forward>,
    /// When set, the last apply failed and is retried at this instant.
    retry_at: Option<Instant>,
    retry_delay: Duration,
    ruleset_event_pending: Arc<AtomicBool>,
}

/// Runs until SIGTERM/SIGINT. A bad config is an error before anything is touched.
pub fn run(opts: Options) -> Result<(), String> {
    let config = config::load(&opts.config_path, &opts.overrides).map_err(|e| e.to_string())?;
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

    let nft = Nft::new(opts.nft.clone());
    let shared = Arc::new(Shared {
        snapshot: Mutex::new(Snapshot {
            started: Instant::now(),
            config: config.clone(),
            forwards: Vec::new(),
            wan_ipv4: Vec::new(),
            table_present: false,
            last_reconcile: None,
            restores: 0,
            fw4_include: include_status(&opts.fw4_include, config.connmark, None),
            reload_error: None,
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
        retry_at: None,
        retry_delay: Duration::from_secs(1),
        ruleset_event_pending: pending,
    };
    let mut servers = api::Servers::default();
    info!(
        "starting {} (mode {:?}, wan {}, lan {})",
        env!("CARGO_PKG_VERSION"),
        owner.config.direct_access,
        owner.config.wan_device,
        owner.config.lan_devices.join(",")
    );
    owner.reconcile("startup");
    servers.sync(&owner.config, &shared);

    let mut next_check = Instant::now() + Duration::from_secs(PERIODIC_CHECK_SECS);
    loop {
        let deadline = owner.retry_at.map_or(next_check, |r| r.min(next_check));
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event::Stop(sig)) => {
                info!("{sig} received: removing table inet wilife and stopping");
                servers.stop();
                if let Err(e) = shared.nft.delete_table() {
                    error!("could not remove table inet wilife: {e}");
                }
                return Ok(());
            }
            Ok(Event::Reload) => {
                owner.reload();
                servers.sync(&owner.config, &shared);
            }
            Ok(Event::RulesetChanged) => {
                // Let a burst (fw4 reload, nft -f) finish, then look once.
                std::thread::sleep(Duration::from_millis(DRIFT_DEBOUNCE_MS));
                owner.ruleset_event_pending.store(false, Ordering::SeqCst);
                while let Ok(ev) = rx.try_recv() {
                    if !matches!(ev, Event::RulesetChanged) {
                        let _ = tx.send(ev);
                        break;
                    }
                }
                owner.check();
            }
            Err(RecvTimeoutError::Timeout) => {
                if owner.retry_at.is_some_and(|r| r <= Instant::now()) {
                    owner.reconcile("retry");
                }
                if next_check <= Instant::now() {
                    owner.check();
                    servers.sync(&owner.config, &shared);
                    next_check = Instant::now() + Duration::from_secs(PERIODIC_CHECK_SECS);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err("internal error: event channel closed".into())
            }
        }
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Owner {
    /// Renders the desired table from config and facts and makes the kernel hold exactly it.
    fn reconcile(&mut self, reason: &str) {
        let started = Instant::now();
        self.facts = netinfo::facts(&self.config, &netinfo::addresses());
        self.forwards = static_forwards(&self.config);
        let batch = render::render_json(&render::Desired {
            config: &self.config,
            forwards: &self.forwards,
            facts: &self.facts,
        });
        let result = self.shared.nft.replace(&batch);
        let duration_ms = started.elapsed().as_millis() as u64;
        let error = match result {
            Ok(applied) => {
                self.applied = Some(applied);
                self.retry_at = None;
                self.retry_delay = Duration::from_secs(1);
                info!(
                    "table inet wilife applied ({reason}): {} forward(s), {duration_ms} ms",
                    self.forwards.len()
                );
                None
            }
            Err(e) => {
                self.applied = None;
                error!(
                    "could not apply table inet wilife ({reason}): {e}; retrying in {} s",
                    self.retry_delay.as_secs()
                );
                self.retry_at = Some(Instant::now() + self.retry_delay);
                self.retry_delay = (self.retry_delay * 2).min(Duration::from_secs(MAX_RETRY_SECS));
                Some(e.to_string())
            }
        };
        // A successful replace has just read the table back; only a failure leaves it to be asked.
        let present = error.is_none() || self.shared.nft.list_table().is_ok_and(|t| t.is_some());
        let in_fw4 = self
            .shared
            .nft
            .fw4_accepts(self.config.connmark)
            .ok()
            .flatten();
        let mut snap = self.shared.snapshot.lock().unwrap();
        snap.config = self.config.clone();
        snap.forwards = self.forwards.clone();
        snap.wan_ipv4 = self.facts.wan_ipv4.clone();
        snap.table_present = present;
        snap.fw4_include = include_status(&self.opts.fw4_include, self.config.connmark, in_fw4);
        snap.last_reconcile = Some(Reconcile {
            at: unix_now(),
            reason: reason.to_string(),
            result: if error.is_none() { "ok" } else { "error" }.to_string(),
            error,
            duration_ms,
        });
    }

    /// Is the kernel still holding what we applied, and are the facts unchanged? Restore if not.
    fn check(&mut self) {
        let facts = netinfo::facts(&self.config, &netinfo::addresses());
        if facts != self.facts {
            info!("network addresses changed: re-rendering");
            return self.reconcile("network");
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
                self.reconcile("restore");
            }
            Err(e) => warning!("cannot read table inet wilife back: {e}"),
        }
    }

    /// SIGHUP: a new config replaces the old only if it is valid; otherwise the old stays in force.
    fn reload(&mut self) {
        match config::load(&self.opts.config_path, &self.opts.overrides) {
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
                    "configuration reloaded from {}",
                    self.opts.config_path.display()
                );
                self.config = new;
                self.shared.snapshot.lock().unwrap().reload_error = None;
                self.reconcile("reload");
            }
            Err(e) => {
                error!("reload refused, the previous configuration stays in force: {e}");
                self.shared.snapshot.lock().unwrap().reload_error = Some(e.to_string());
            }
        }
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
