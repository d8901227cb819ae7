//! Named constants: priorities, defaults, limits. One place, so a reader sees every magic number.

/// Our nftables table (family inet).
pub const TABLE: &str = "wilife";

/// Hook priorities, relative to the standard ones fw4 uses (dstnat -100, filter 0, srcnat 100):
/// ours run just before fw4's, so our DNAT is seen by fw4's forward chain and our drops come first.
pub const PRIO_DSTNAT: i32 = -100 - 10;
pub const PRIO_FILTER: i32 = -10;
pub const PRIO_SRCNAT: i32 = 100 - 10;
/// The bridge family's filter priority is -200; ours runs just before anything else there.
pub const PRIO_BRIDGE_FILTER: i32 = -200 - 10;

/// WiLife camera <-> Command Center services (vendor manual): SSDP, UPnP control, camera control.
pub const SSDP_PORT: u16 = 1900;
pub const SSDP_GROUP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(239, 255, 255, 250);
/// The SSDP relay's own port (camera networks): relayed datagrams come from it and answers to relayed
/// searches go to it, so the firewall admits one known port, not every port a camera names.
pub const SSDP_RELAY_PORT: u16 = 1901;
pub const UPNP_CONTROL_PORTS: (u16, u16) = (50000, 65000);
pub const CAMERA_CONTROL_PORTS: (u16, u16) = (5800, 5821);
/// WiLife 2.x video port; LukWerks releases used 22210 (`camera_rules.video_port`).
pub const DEFAULT_VIDEO_PORT: u16 = 22211;
/// Outbound services (vendor manual): WiLife Online (HTTP, HTTPS, XMPP), relay viewing, e-mail, and
/// what a remote viewing web client inside the LAN needs (RTSP 554, MMS 1755).
pub const WILIFE_ONLINE_PORTS: &[u16] = &[80, 443, 5222];
pub const RELAY_PORTS: &[u16] = &[80];
pub const REMOTE_CLIENT_PORTS: &[u16] = &[80, 443, 554, 1755];

/// Default connmark bit: clear of mwan3 (0x3f00), pbr (0x00ff0000) and qosify/SQM (low byte).
pub const DEFAULT_CONNMARK: u32 = 0x1000_0000;

/// WiLife direct-mode ports (vendor manual).
pub const DEFAULT_DIRECT_PORTS: (u16, u16) = (20570, 20575);

/// The JSON API's default TCP port (not used by any stock OpenWrt service).
pub const DEFAULT_API_PORT: u16 = 8780;

pub const DEFAULT_CONFIG: &str = "/etc/config/wilife";
/// The API's write token: a root-only file, outside the UCI config that read-only LuCI users read.
pub const DEFAULT_API_TOKEN_FILE: &str = "/etc/wilife/api_token";
/// The logical networks (netifd) whose devices are WAN and LAN unless the config pins devices.
pub const DEFAULT_WAN_NETWORK: &str = "wan";
pub const DEFAULT_LAN_NETWORK: &str = "lan";
pub const DEFAULT_STATE_DIR: &str = "/var/run/wilife";
/// OpenWrt's dnsmasq lease file.
pub const DEFAULT_DHCP_LEASES: &str = "/tmp/dhcp.leases";
/// A host unseen this long is absent: the Linux bridge's default FDB ageing time.
pub const DEFAULT_PRESENCE_TIMEOUT_SECS: u32 = 300;
/// Answers to multicast searches go out at least this long before MX ends.
pub const SSDP_MX_MARGIN_MS: u64 = 500;
/// Network change events are coalesced this long before the network is read again.
pub const NET_DEBOUNCE_MS: u64 = 50;
/// ... but a burst is read at most this long after it began: events that never pause (a LAN host
/// sending from ever new MACs) must not keep a WAN address change from being seen.
pub const NET_BURST_MAX_MS: u64 = 500;

/// Where OpenWrt's fw4 picks up our static forward-chain include.
pub const FW4_FORWARD_INCLUDE: &str = "/usr/share/nftables.d/chain-pre/forward/30-wilife.nft";

/// How soon after a ruleset change event the table is checked (coalesces bursts like `fw4 reload`).
pub const DRIFT_DEBOUNCE_MS: u64 = 150;
/// Safety-net check of the table even when no netlink event came (a lost event, ENOBUFS).
pub const PERIODIC_CHECK_SECS: u64 = 10;
/// A newly watched MAC gets the FDB read at once, but not more often than this (seconds).
pub const FDB_NEWCOMER_SECS: u64 = 5;
/// The bridge FDB is read when a watched host's entry changes, and at least this often besides (in
/// case events were lost): a flooded FDB is long to list.
pub const FDB_REFRESH_SECS: u64 = 60;
/// Retry back-off after a failed apply: from 1 s, doubling, up to this.
pub const MAX_RETRY_SECS: u64 = 30;

/// API limits: a router serves a handful of LAN clients, never a crowd.
pub const API_MAX_BODY: usize = 16 * 1024;
pub const API_MAX_HEADERS: usize = 64;

/// HTTP (API and IGD): the request line, one header line, the whole head. Real clients send a few
/// hundred bytes.
pub const HTTP_MAX_REQUEST_LINE: usize = 2048;
pub const HTTP_MAX_HEADER_LINE: usize = 4096;
pub const HTTP_MAX_HEAD: usize = 16 * 1024;
/// A whole request must arrive within this (a slow client holds a slot no longer).
pub const HTTP_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Writing an answer to a client that does not read gives up after this.
pub const HTTP_WRITE_TIMEOUT_MS: u64 = 5_000;
/// Connections one service holds at once, and per source address (the Command Center and LuCI's rpcd
/// need one or two; a host that opens more cannot crowd them out).
pub const HTTP_MAX_CONNECTIONS: usize = 64;
pub const HTTP_MAX_PER_SOURCE: usize = 8;
/// Of those, kept for loopback and the authorised Command Centers: many LAN addresses together can
/// fill the rest, never these.
pub const HTTP_RESERVED_CONNECTIONS: usize = 16;
/// Workers that run handlers, per service, and the requests that may wait for them.
pub const HTTP_WORKERS: usize = 2;
pub const HTTP_QUEUE: usize = 16;
/// After an accept error (out of descriptors), accepting pauses this long.
pub const HTTP_ACCEPT_BACKOFF_MS: u64 = 200;

/// UPnP IGD HTTP port (description, control, events) on the LAN addresses. 5431 is the port IGDs of the
/// Broadcom lineage use; it keeps clear of miniupnpd's 5000 and of the kernel's ephemeral range.
pub const DEFAULT_UPNP_PORT: u16 = 5431;
/// Mappings one client may hold: a Command Center needs one; two lets it move port without a gap.
pub const DEFAULT_UPNP_MAX_PER_CLIENT: usize = 2;
/// Seconds asked for an upstream mapping: an hour, renewed at half of what was granted.
pub const DEFAULT_UPSTREAM_LEASE_SECS: u32 = 3600;
/// SSDP ssdp:alive period (the advertisement's max-age is three times this).
pub const DEFAULT_SSDP_NOTIFY_SECS: u32 = 300;
/// IGD v2's longest lease; v2 "lease 0" means this.
pub const IGD2_MAX_LEASE: u32 = 604_800;

/// UPnP limits: SOAP bodies are a few hundred bytes; nothing legitimate comes near these.
pub const UPNP_MAX_BODY: usize = 16 * 1024;
pub const XML_MAX_DEPTH: usize = 16;
pub const XML_MAX_ELEMENTS: usize = 256;
/// Attributes of one element: a SOAP envelope's carry two or three (namespaces, encodingStyle).
pub const XML_MAX_ATTRIBUTES: usize = 16;
pub const GENA_MAX_SUBSCRIPTIONS: usize = 32;
/// Subscriptions one host may hold (a Command Center needs one per service, Windows' client two).
pub const GENA_MAX_PER_HOST: usize = 4;
/// Of GENA_MAX_SUBSCRIPTIONS, kept for the authorised Command Centers (two of them, each at its
/// GENA_MAX_PER_HOST).
pub const GENA_RESERVED: usize = 8;
pub const GENA_DEFAULT_TIMEOUT_SECS: u64 = 1800;
/// SSDP answers per source: a burst of this many datagrams, refilled at `SSDP_RATE_PER_SEC`.
pub const SSDP_BURST: f64 = 40.0;
pub const SSDP_RATE_PER_SEC: f64 = 20.0;
/// SSDP answers to all sources but the authorised Command Centers together (any address can be
/// forged): a search for ssdp:all costs 9, so this is five such searches a second.
pub const SSDP_SHARED_BURST: f64 = 90.0;
pub const SSDP_SHARED_RATE_PER_SEC: f64 = 45.0;
/// Decisions (grants, refusals) the API remembers.
pub const DECISIONS_KEPT: usize = 100;
