//! The versioned JSON API (`/api/v1/…`) for the Command Center, LuCI and scripts. Bound only to the
//! configured addresses (default: the LAN devices' addresses and loopback); a request whose Host header
//! is not one of the router's own addresses is refused (DNS rebinding); every error has a JSON body.

use crate::config::Config;
use crate::consts::{
    API_MAX_BODY, API_MAX_HEADERS, HTTP_MAX_HEAD, HTTP_MAX_HEADER_LINE, HTTP_MAX_REQUEST_LINE,
};
use crate::firewall::apply::Counts;
use crate::http::host::{cross_site, host_allowed};
use crate::http::{Handler, Limits, Listeners, Request, Response};
use crate::net::NetState;
use crate::owner::{AskError, Shared};
use crate::status::{mapping_statuses, Decision};
use crate::upnp::error::UpnpError;
use crate::upnp::policy::Change;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Live table facts are read from the kernel at most this often, however hard a client polls.
const LIVE_CACHE: Duration = Duration::from_secs(1);

type Live = Option<(bool, BTreeMap<String, Counts>)>;

struct Api {
    shared: Arc<Shared>,
    live: Mutex<Option<(Instant, Live)>>,
}

/// The API's listeners.
pub struct Servers {
    listeners: Listeners,
    handler: Option<Handler>,
}

/// The bounds of an API request (the API takes no bodies but a DELETE's empty one).
pub const API_LIMITS: Limits = Limits {
    max_request_line: HTTP_MAX_REQUEST_LINE,
    max_header_line: HTTP_MAX_HEADER_LINE,
    max_headers: API_MAX_HEADERS,
    max_head: HTTP_MAX_HEAD,
    max_body: API_MAX_BODY,
};

impl Default for Servers {
    fn default() -> Self {
        Servers {
            listeners: Listeners::new("API", "/api/v1/", API_LIMITS),
            handler: None,
        }
    }
}

/// Where the API listens: `api_listen`, or the LAN devices' IPv4 addresses plus loopback.
pub fn listen_addresses(config: &Config, net: &NetState) -> Vec<SocketAddr> {
    let ips: Vec<IpAddr> = if config.api_listen.is_empty() {
        let mut v: Vec<IpAddr> = config
            .lan_devices
            .iter()
            .flat_map(|d| net.ipv4_of(d))
            .map(|(ip, _)| IpAddr::V4(ip))
            .collect();
        v.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        v
    } else {
        config.api_listen.clone()
    };
    let mut out: Vec<SocketAddr> = ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, config.api_port))
        .collect();
    out.sort();
    out.dedup();
    out
}

impl Servers {
    /// Listens on the wanted addresses (addresses come and go).
    pub fn sync(&mut self, config: &Config, net: &NetState, shared: &Arc<Shared>) {
        let handler = self
            .handler
            .get_or_insert_with(|| {
                let api = Api {
                    shared: shared.clone(),
                    live: Mutex::new(None),
                };
                Arc::new(move |request| api.handle(request)) as Handler
            })
            .clone();
        let wanted = listen_addresses(config, net);
        (self.listeners).set_trusted(net.command_center_addresses(&config.command_centers));
        self.listeners.sync(&wanted, &handler);
    }

    pub fn stop(&mut self) {
        self.listeners.stop();
    }
}

/// What an endpoint answers: a status, a JSON body and, for 405, the methods allowed.
struct Answer {
    status: u16,
    body: Value,
    allow: Option<&'static str>,
}

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer {
            status: 200,
            body,
            allow: None,
        }
    }

    /// A JSON error body: `{"error": {"status": 404, "message": "…"}}`.
    fn error(status: u16, message: &str) -> Answer {
        Answer {
            status,
            body: json!({"error": {"status": status, "message": message}}),
            allow: None,
        }
    }

    /// 405, naming the methods `path` takes.
    fn wrong_method(method: &str, path: &str, allow: &'static str) -> Answer {
        let m: String = method.chars().take(20).collect();
        let message = format!("method {m} is not allowed on {path}; use {allow}");
        Answer {
            allow: Some(allow),
            ..Answer::error(405, &message)
        }
    }
}

/// What answers one read endpoint.
type Read = fn(&Api) -> Answer;

/// The read endpoints, in the order the index lists them, and what answers each.
const READS: &[(&str, Read)] = &[
    ("/api/v1", Api::index),
    ("/api/v1/status", Api::status),
    ("/api/v1/health", Api::health),
    ("/api/v1/diagnosis", Api::diagnosis),
    ("/api/v1/cameras", Api::cameras),
    ("/api/v1/remedy", Api::remedy),
    ("/api/v1/outbound", Api::outbound),
    ("/api/v1/mappings", Api::mappings),
    (PROBE, Api::probe_last),
];

/// The end-to-end probe: GET its last report, POST to run it now (rate-limited; it only sends the
/// router's own SYNs to the Command Center, so it needs no token).
const PROBE: &str = "/api/v1/probe";

/// The one write: removing a mapping.
const MAPPING_ITEM: &str = "/api/v1/mappings/";

/// Compares secrets without an early exit on the first difference.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Api {
    /// `None` (no answer at all) for a request from outside the LAN and loopback.
    fn handle(&self, request: Request) -> Option<Response> {
        if !self.may_ask(request.peer.ip()) {
            debug!(
                "API: ignoring a request from {}, outside the LAN",
                request.peer
            );
            return None;
        }
        let answer = self.route(&request);
        let body = format!("{}\n", answer.body);
        let mut response = Response::new(answer.status, "application/json", body)
            .with_header("Cache-Control", "no-store");
        if let Some(methods) = answer.allow {
            response = response.with_header("Allow", methods);
        }
        Some(response)
    }

    /// On its default addresses the API answers loopback and the LAN subnets only, as the kernel's
    /// input guard does: the guard is gone for a moment when someone flushes the ruleset. Addresses
    /// set in `api_listen` are the administrator's choice, guard and all.
    fn may_ask(&self, peer: IpAddr) -> bool {
        let snap = self.shared.snapshot.lock().unwrap();
        if !snap.config.api_listen.is_empty() || peer.is_loopback() {
            return true;
        }
        match peer {
            IpAddr::V4(ip) => crate::net::subnet::in_nets(ip, &snap.facts.lan_ipv4_nets),
            IpAddr::V6(_) => false,
        }
    }

    /// The Host check (DNS rebinding), then the endpoint.
    fn route(&self, request: &Request) -> Answer {
        let Some(host) = request.header("Host") else {
            return Answer::error(400, "a Host header is required");
        };
        let own = self.shared.snapshot.lock().unwrap().net.own_ips();
        if !host_allowed(host, &own) {
            return Answer::error(
                403,
                "the Host header must be one of the router's own addresses (DNS rebinding protection)",
            );
        }
        if let Some(why) = cross_site(
            request.header("Origin"),
            request.header("Sec-Fetch-Site"),
            host,
        ) {
            return Answer::error(403, why);
        }
        let path = request.path();
        let path = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        if let Some(rest) = path.strip_prefix(MAPPING_ITEM) {
            if request.method != "DELETE" {
                return Answer::wrong_method(&request.method, "a mapping", "DELETE");
            }
            return self.delete_mapping(request, rest);
        }
        if path == PROBE && request.method == "POST" {
            return self.probe_now();
        }
        let Some((_, answer)) = READS.iter().find(|(p, _)| *p == path) else {
            return Answer::error(404, &format!("no such endpoint: {path}; see GET /api/v1"));
        };
        if !matches!(request.method.as_str(), "GET" | "HEAD") {
            let allow = if path == PROBE {
                "GET, HEAD, POST"
            } else {
                "GET, HEAD"
            };
            return Answer::wrong_method(&request.method, path, allow);
        }
        answer(self)
    }

    fn index(&self) -> Answer {
        let mut endpoints: Vec<String> =
            READS[1..].iter().map(|(p, _)| format!("GET {p}")).collect();
        endpoints.push(format!("POST {PROBE}"));
        endpoints.push(format!("DELETE {MAPPING_ITEM}{{protocol}}/{{port}}"));
        Answer::ok(json!({"api_version": crate::status::API_VERSION, "endpoints": endpoints}))
    }

    fn status(&self) -> Answer {
        let live = self.live();
        let snap = self.shared.snapshot.lock().unwrap().clone();
        let status = snap.status(live.as_ref().map(|(p, c)| (*p, c)));
        Answer::ok(serde_json::to_value(status).unwrap_or(Value::Null))
    }

    fn health(&self) -> Answer {
        let problems = self.shared.snapshot.lock().unwrap().problems();
        if problems.is_empty() {
            Answer::ok(json!({"status": "ok"}))
        } else {
            Answer {
                status: 503,
                ..Answer::ok(json!({"status": "degraded", "problems": problems}))
            }
        }
    }

    fn diagnosis(&self) -> Answer {
        let snap = self.shared.snapshot.lock().unwrap().clone();
        let d = crate::diagnosis::diagnose(&snap, SystemTime::now());
        Answer::ok(serde_json::to_value(d).unwrap_or(Value::Null))
    }

    fn cameras(&self) -> Answer {
        let live = self.live();
        let snap = self.shared.snapshot.lock().unwrap().clone();
        let live = live.as_ref().map(|(p, c)| (*p, c));
        let doc = crate::cameras::report(&snap, live, SystemTime::now());
        Answer::ok(serde_json::to_value(doc).unwrap_or(Value::Null))
    }

    /// What would move cameras a hardware switch hides into a network of their own: the UCI
    /// changes (LuCI applies them with rollback), or why there are none.
    fn remedy(&self) -> Answer {
        let (config, net) = {
            let snap = self.shared.snapshot.lock().unwrap();
            (snap.config.clone(), snap.net.clone())
        };
        match crate::net::remedy::files::plan_for(&config, &net) {
            Ok(plan) => {
                let batch = crate::net::remedy::uci_batch(&plan.changes);
                Answer::ok(json!({"plan": plan, "uci_batch": batch}))
            }
            Err(reason) => Answer::ok(json!({ "reason": reason })),
        }
    }

    fn outbound(&self) -> Answer {
        let config = self.shared.snapshot.lock().unwrap().config.clone();
        let list = crate::firewall::render::outbound::allowances(&config);
        let in_force = self.live().is_some_and(|(present, _)| present);
        Answer::ok(json!({"allowances": list, "in_force": in_force}))
    }

    fn mappings(&self) -> Answer {
        let live = self.live();
        let mappings = self.shared.snapshot.lock().unwrap().mappings.clone();
        let decisions: Vec<Decision> = self
            .shared
            .decisions
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect();
        let now = crate::clock::unix_now();
        let list = mapping_statuses(&mappings, live.as_ref().map(|(_, c)| c), now);
        Answer::ok(json!({"mappings": list, "decisions": decisions}))
    }

    /// The last end-to-end probe (null before the first).
    fn probe_last(&self) -> Answer {
        let report = self.shared.snapshot.lock().unwrap().probe.clone();
        Answer::ok(json!({ "probe": report }))
    }

    /// Runs the end-to-end probe now: its report, or 429 while the rate limit holds.
    fn probe_now(&self) -> Answer {
        match self.shared.probe() {
            Some(Ok(report)) => Answer::ok(json!({ "probe": report })),
            Some(Err(after)) => Answer::error(
                429,
                &format!(
                    "a probe ran moments ago: ask again in {} s",
                    after.as_secs() + 1
                ),
            ),
            None => Answer::error(503, "the probe is busy: ask again in a few seconds"),
        }
    }

    /// `DELETE /api/v1/mappings/{protocol}/{port}`: the administrator removes a mapping and its live
    /// sessions. Needs `Authorization: Bearer <api_token>`.
    fn delete_mapping(&self, request: &Request, rest: &str) -> Answer {
        if let Err(refused) = self.authorised(request) {
            return refused;
        }
        let port = match mapping_key(rest) {
            Ok(port) => port,
            Err(bad) => return bad,
        };
        match self.shared.ask(Change::Remove { port }) {
            Ok(Ok(outcome)) => {
                let now = crate::clock::unix_now();
                Answer::ok(
                    json!({"removed": mapping_statuses(&outcome.mappings, None, now),
                                  "sessions_ended": outcome.sessions_ended}),
                )
            }
            Ok(Err(r)) if r.error == UpnpError::NoSuchEntryInArray => Answer::error(404, &r.reason),
            Ok(Err(r)) => Answer::error(500, &r.reason),
            Err(AskError::Stopping) => Answer::error(503, "the agent is stopping"),
            Err(AskError::NoAnswer) => Answer::error(503, "the agent did not answer in time"),
        }
    }

    /// Changes need the configured token as `Authorization: Bearer <api_token>`.
    fn authorised(&self, request: &Request) -> Result<(), Answer> {
        let (token, file) = {
            let snapshot = self.shared.snapshot.lock().unwrap();
            let c = &snapshot.config;
            (c.api_token.clone(), c.api_token_file.clone())
        };
        let Some(token) = token else {
            return Err(Answer::error(
                403,
                &format!(
                    "changes through the API are disabled: no token in {}",
                    file.display()
                ),
            ));
        };
        let given = request
            .header("Authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| same_secret(g, &token)) {
            return Err(Answer::error(
                401,
                "a valid 'Authorization: Bearer <api_token>' header is required",
            ));
        }
        Ok(())
    }

    /// The table's presence and counters, from the kernel, cached briefly.
    fn live(&self) -> Live {
        let mut cache = self.live.lock().unwrap();
        if let Some((at, live)) = &*cache {
            if at.elapsed() < LIVE_CACHE {
                return live.clone();
            }
        }
        let live = match self.shared.nft.list_table() {
            Ok(Some(t)) => Some((true, self.shared.nft.counters(&t))),
            Ok(None) => Some((false, BTreeMap::new())),
            Err(_) => None,
        };
        *cache = Some((Instant::now(), live.clone()));
        live
    }
}

/// `{protocol}/{port}` of a mapping: the TCP port (UDP is never mapped), or the answer why not.
fn mapping_key(rest: &str) -> Result<u16, Answer> {
    let Some((proto, port)) = rest.split_once('/') else {
        return Err(Answer::error(
            404,
            "use /api/v1/mappings/{protocol}/{port}, e.g. /api/v1/mappings/tcp/20570",
        ));
    };
    let Ok(port) = port.parse::<u16>() else {
        return Err(Answer::error(400, &format!("'{port:.20}' is not a port")));
    };
    match proto.to_ascii_lowercase().as_str() {
        "tcp" => Ok(port),
        "udp" => Err(Answer::error(
            404,
            &format!("there is no udp mapping of port {port}"),
        )),
        _ => Err(Answer::error(
            400,
            &format!("'{proto:.20}' is not a protocol: use tcp or udp"),
        )),
    }
}
