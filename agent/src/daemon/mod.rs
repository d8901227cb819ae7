//! `wilife-agent run`: one thread owns the state (`Owner`) and reconciles — `reconcile.rs` keeps the
//! firewall in line with the config and the network, `mappings.rs` runs the mapping changes; the other
//! threads only turn inputs into events (`inputs.rs`) or serve the published snapshot (the API, the IGD).

mod inputs;
mod mappings;
mod reconcile;

pub use reconcile::include_status;

use crate::api;
use crate::clock::unix_now;
use crate::config::{self, Config, Overrides};
use crate::consts::{DRIFT_DEBOUNCE_MS, PERIODIC_CHECK_SECS};
use crate::firewall::apply::{Applied, Nft};
use crate::firewall::{Forward, NetFacts};
use crate::net::{self, dhcp, NetState};
use crate::netlink;
use crate::owner::{Event, Shared};
use crate::probe;
use crate::queue::Queue;
use crate::status::Snapshot;
use crate::upnp::description::Identity;
use crate::upnp::discovery::lan_interfaces;
use crate::upnp::leases::{self, Mapping};
use crate::upnp::policy::Change;
use crate::upnp::relay::Sides;
use crate::upnp::relayd::SsdpRelay;
use crate::upnp::server::IgdRuntime;
use crate::upstream::cascade;
use crate::upstream::worker::{Want, Worker};
use inputs::Inputs;
use nix::sys::signal::Signal;
use nix::sys::socket::SockProtocol;
use reconcile::{identity, Trigger};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A camera (MAC) and one peer (`command_center` with its name, or `rest_of_lan`).
type SwitchingKey = (String, &'static str, Option<String>);

pub struct Options {
    pub config_path: PathBuf,
    pub overrides: Overrides,
    /// The ubus command line tool, to ask netifd which devices the logical networks are.
    pub ubus: PathBuf,
    pub nft: PathBuf,
    pub fw4_include: PathBuf,
}

/// The one state owner: everything the agent knows and holds in force lives here, changed only on this
/// thread; the other threads see the `Snapshot` it publishes.
struct Owner {
    opts: Options,
    config: Config,
    shared: Arc<Shared>,
    /// What the kernel holds since the last successful apply (`None`: it failed, a retry is due); an
    /// unchanged render is not applied again.
    applied: Option<Applied>,
    facts: NetFacts,
    forwards: Vec<Forward>,
    /// The forwards the last end-to-end probe was asked for.
    probed: Vec<Forward>,
    mappings: Vec<Mapping>,
    identity: Identity,
    /// When set, the last apply failed and is retried at this instant.
    retry_at: Option<Instant>,
    retry_delay: Duration,
    /// A ruleset event is queued (the monitor sends at most one).
    ruleset_event_pending: Arc<AtomicBool>,
    /// The last rtnetlink dump and DHCP leases (facts and presence come from them).
    net: NetState,
    dhcp_leases: Vec<dhcp::Lease>,
    /// A network event is queued.
    net_event_pending: Arc<AtomicBool>,
    /// The MACs whose bridge FDB events the network monitor passes on (cameras, Command Centers).
    fdb_watched: Arc<std::sync::Mutex<Vec<config::Mac>>>,
    /// Set by the monitor when a watched MAC's FDB entry changed; cleared when the FDB is read.
    fdb_changed: Arc<AtomicBool>,
    /// When the FDB was last read (it is read again at least every FDB_REFRESH_SECS, in case events
    /// were lost).
    fdb_read_at: Option<Instant>,
    /// A newly watched MAC came too soon after the last FDB read: the FDB is read at this time.
    fdb_due: Option<Instant>,
    /// The last verdict logged for each camera and peer (logged once per change).
    switching_said: Vec<(SwitchingKey, net::switching::Verdict)>,
    /// No rtnetlink events (subscription failed): the periodic check reads the network instead.
    net_events_missing: bool,
    /// No nftables events: the periodic check reads our tables back (with them, idle means no nft).
    ruleset_events_missing: Arc<AtomicBool>,
    /// When a watched host would turn absent unless seen again: read the network then.
    presence_check_at: Option<SystemTime>,
    /// The socket of mapping changes and conntrack deletions, kept open (see `netlink::Kept`).
    netfilter: netlink::Kept,
    /// Ports the gateway upstream forwards to someone else, as its worker last said.
    taken_upstream: Vec<u16>,
}

/// Reads the config and gives it the devices its logical networks have now. A WAN that is down or
/// unknown is no error: camera isolation and the LAN side must not wait for the internet.
fn load_config(opts: &Options) -> Result<Config, config::ConfigErrors> {
    let mut c = config::load(&opts.config_path, &opts.overrides)?;
    // An unusable token file costs API writes only, never the camera rules or the IGD.
    c.api_token = config::read_token(&c.api_token_file).unwrap_or_else(|e| {
        warning!("API writes are off: {}: {e}", c.api_token_file.display());
        None
    });
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

/// Why `run` ended with an error. Nothing is touched before the first three can happen.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is not valid: fix the lines named (one error per line).
    #[error("{0}")]
    Config(#[from] config::ConfigErrors),
    /// The state directory cannot be made: a read-only or full filesystem, or a wrong `state_dir`.
    #[error("cannot create state_dir {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The signal mask cannot be set (never seen on Linux).
    #[error("cannot block signals: {0}")]
    Signals(#[source] nix::Error),
}

/// Runs until SIGTERM/SIGINT. A bad config is an error before anything is touched.
pub fn run(opts: Options) -> Result<(), RunError> {
    let config = load_config(&opts)?;
    std::fs::create_dir_all(&config.state_dir).map_err(|source| RunError::StateDir {
        path: config.state_dir.clone(),
        source,
    })?;
    let signals = inputs::block_signals().map_err(RunError::Signals)?;
    let events = Arc::new(Queue::unbounded());
    let nft = Nft::new(opts.nft.clone());
    let inputs = inputs::spawn(signals, &events, nft.own_pids());
    let fw4_include = include_status(&opts.fw4_include, config.connmark, None);
    let snapshot = Snapshot::new(config.clone(), fw4_include);
    let shared = Arc::new(Shared::new(snapshot, nft, events.clone()));
    probe::worker::start(shared.clone());
    let upstream = {
        let shared = shared.clone();
        Worker::start(move |status| shared.snapshot.lock().unwrap().upstream = status)
    };
    let mut owner = Owner::new(opts, config, shared, inputs);
    let mut services = Services {
        api: api::Servers::default(),
        igd: IgdRuntime::default(),
        relay: None,
        upstream,
    };
    owner.start(&mut services);
    owner.serve(&events, &mut services);
    Ok(())
}

/// The request-serving parts the owner starts, stops and points at the addresses in force, and the
/// client of the gateway upstream.
struct Services {
    api: api::Servers,
    igd: IgdRuntime,
    /// SSDP between the camera networks and the Command Centers (while there are camera networks).
    relay: Option<SsdpRelay>,
    upstream: Worker,
}

/// When the owner must act without an event.
struct Timers {
    /// The periodic check (a state file to write again, listeners; drift only without ruleset events).
    next_check: Instant,
    /// A ruleset burst has ended: read our table back then.
    drift_check_at: Option<Instant>,
}

impl Owner {
    fn new(opts: Options, config: Config, shared: Arc<Shared>, inputs: Inputs) -> Owner {
        Owner {
            opts,
            config,
            shared,
            applied: None,
            facts: NetFacts::default(),
            forwards: Vec::new(),
            probed: Vec::new(),
            mappings: Vec::new(),
            identity: Identity::default(),
            retry_at: None,
            retry_delay: Duration::from_secs(1),
            ruleset_event_pending: inputs.ruleset_pending,
            net: NetState::default(),
            dhcp_leases: Vec::new(),
            net_event_pending: inputs.net_pending,
            fdb_watched: inputs.fdb_watched,
            fdb_changed: inputs.fdb_changed,
            fdb_read_at: None,
            fdb_due: None,
            switching_said: Vec::new(),
            net_events_missing: inputs.net_events_missing,
            ruleset_events_missing: inputs.ruleset_events_missing,
            presence_check_at: None,
            netfilter: netlink::Kept::new(SockProtocol::NetlinkNetFilter),
            taken_upstream: Vec::new(),
        }
    }

    /// The network first: restored mappings are judged, and the IGD named, on the same facts as the
    /// rest; then the tables, then the services.
    fn start(&mut self, services: &mut Services) {
        info!(
            "starting {} (mode {:?}, {})",
            env!("CARGO_PKG_VERSION"),
            self.config.direct_access,
            devices_line(&self.config)
        );
        self.read_network();
        self.identity = identity(&self.config, &self.net, unix_now() as u32);
        self.mappings = self.restore_mappings();
        self.reconcile(Trigger::Startup);
        self.sync_services(services);
        self.publish_upnp(&services.igd);
        self.want_upstream(services);
        self.probe_changed();
    }

    /// Takes events until a stop signal; the timers run after every event too, so a stream of requests
    /// cannot starve them.
    fn serve(&mut self, events: &Queue<Event>, services: &mut Services) {
        let mut timers = Timers {
            next_check: Instant::now() + Duration::from_secs(PERIODIC_CHECK_SECS),
            drift_check_at: None,
        };
        loop {
            let wait = self
                .deadline(&timers)
                .saturating_duration_since(Instant::now());
            match events.pop_timeout(wait) {
                Some(Event::Stop(sig)) => {
                    self.stop(sig, services);
                    return;
                }
                Some(event) => self.handle(event, &mut timers, services),
                None => {}
            }
            self.run_due(&mut timers, services);
            self.publish_upnp(&services.igd);
            self.want_upstream(services);
            self.probe_changed();
        }
    }

    fn handle(&mut self, event: Event, timers: &mut Timers, services: &mut Services) {
        match event {
            Event::Reload => {
                self.reload();
                self.sync_services(services);
            }
            Event::Upnp(change, reply) => {
                let result = self.change(change);
                let _ = reply.push(result);
            }
            Event::NetworkChanged => {
                self.net_event_pending.store(false, Ordering::SeqCst);
                self.network_changed();
                // Addresses come and go: the listeners and SSDP follow at once.
                self.sync_services(services);
            }
            Event::RulesetChanged => {
                // Let a burst (fw4 reload, nft -f) finish, then look once; meanwhile keep serving.
                (timers.drift_check_at)
                    .get_or_insert(Instant::now() + Duration::from_millis(DRIFT_DEBOUNCE_MS));
            }
            Event::Stop(_) => {}
        }
    }

    /// The earliest moment something is due.
    fn deadline(&self, timers: &Timers) -> Instant {
        let presence = self
            .presence_check_at
            .map(|at| Instant::now() + at.duration_since(SystemTime::now()).unwrap_or_default());
        [
            self.retry_at,
            self.next_expiry(),
            timers.drift_check_at,
            presence,
        ]
        .into_iter()
        .flatten()
        .fold(timers.next_check, Instant::min)
    }

    /// Runs what is due: the drift check after a ruleset burst, a presence deadline, a failed apply's
    /// retry, ended leases, the periodic check.
    fn run_due(&mut self, timers: &mut Timers, services: &mut Services) {
        let now = Instant::now();
        if timers.drift_check_at.is_some_and(|at| at <= now) {
            timers.drift_check_at = None;
            self.ruleset_event_pending.store(false, Ordering::SeqCst);
            self.check();
        }
        if self
            .presence_check_at
            .is_some_and(|at| at <= SystemTime::now())
        {
            // Presence counts the bridge's sightings too: read them fresh.
            self.fdb_changed.store(true, Ordering::SeqCst);
            self.network_changed();
        }
        if self.retry_at.is_some_and(|r| r <= now) {
            self.reconcile(Trigger::Retry);
        }
        if leases::next_expiry(&self.mappings).is_some_and(|at| at <= unix_now()) {
            // A refused commit is tried again at the next turn of the loop.
            let _ = self.change(Change::Expire);
        }
        if timers.next_check <= now {
            // With ruleset events, drift is seen when someone changes the ruleset: an idle agent
            // runs no nft. Without them, our tables are read back every time.
            if self.ruleset_events_missing.load(Ordering::SeqCst) {
                self.check();
            } else if self.net_events_missing {
                self.network_changed();
            }
            // A table that could not be written (state directory full) is written again.
            if self.shared.snapshot.lock().unwrap().state_error.is_some() {
                let _ = self.persist();
            }
            self.sync_services(services);
            timers.next_check = Instant::now() + Duration::from_secs(PERIODIC_CHECK_SECS);
        }
    }

    /// SIGTERM/SIGINT: the services stop (ssdp:byebye), and our tables go.
    fn stop(&self, sig: Signal, services: &mut Services) {
        info!("{sig} received: removing table inet wilife and stopping");
        services.igd.stop();
        if let Some(r) = services.relay.take() {
            r.stop();
        }
        services.api.stop();
        services.upstream.stop();
        self.shared.probes.close();
        if let Err(e) = self.shared.nft.delete_table() {
            error!("could not remove table inet wilife: {e}");
        }
    }

    /// Asks for an end-to-end probe when the forwards changed (the probe thread keeps its rate).
    fn probe_changed(&mut self) {
        if self.forwards != self.probed {
            self.probed = self.forwards.clone();
            if !self.forwards.is_empty() {
                self.shared.probe_later();
            }
        }
    }

    /// Tells the upstream client what the gateway should forward now (it acts on changes only).
    fn want_upstream(&self, services: &mut Services) {
        let wan = self.config.wan_device.as_deref();
        services.upstream.want(Want {
            config: self.config.upstream.clone(),
            wan_device: wan.map(str::to_string),
            wan_ipv4: self.facts.wan_ipv4.clone(),
            gateway: wan.and_then(|d| self.net.gateway_via(d)),
            ports: cascade::ports(&self.forwards),
        });
    }

    /// Brings the API and the IGD (listeners, SSDP) in line with the config and the addresses.
    fn sync_services(&self, services: &mut Services) {
        (services.api).sync(&self.config, &self.net, &self.shared);
        (services.igd).sync(&self.config, &self.net, &self.identity, &self.shared);
        self.sync_relay(services);
    }

    /// Runs the SSDP relay while there are camera networks, with the addresses in force.
    fn sync_relay(&self, services: &mut Services) {
        let c = &self.config;
        if !c.enabled || c.camera_devices.is_empty() {
            if let Some(r) = services.relay.take() {
                r.stop();
                info!("SSDP relay stopped");
            }
            return;
        }
        let camera_macs: Vec<config::Mac> = c.cameras.iter().map(|c| c.mac).collect();
        let learned = (self.facts.learned.iter())
            .filter(|(mac, _)| camera_macs.contains(mac))
            .map(|(_, ip)| *ip);
        let sides = Sides {
            lan: lan_interfaces(&c.lan_devices, &self.net),
            camera_nets: lan_interfaces(&c.camera_devices, &self.net),
            cameras: c
                .cameras
                .iter()
                .filter_map(|c| c.ip)
                .chain(learned)
                .collect(),
            command_centers: self.net.command_center_addresses(&c.command_centers),
        };
        match &services.relay {
            Some(r) => r.update(sides),
            None => match SsdpRelay::start(sides) {
                Ok(r) => {
                    info!(
                        "SSDP relay between {} and {}",
                        c.camera_devices.join(", "),
                        c.lan_devices.join(", ")
                    );
                    services.relay = Some(r);
                }
                Err(e) => error!("SSDP relay cannot listen on udp/1900: {e}"),
            },
        }
    }
}
