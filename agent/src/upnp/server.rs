//! The IGD's HTTP side (descriptions, SOAP control, GENA) and the runtime that starts and stops the whole
//! IGD (HTTP listeners on the LAN addresses, SSDP) with the configuration.
//!
//! Requests from outside the LAN subnets get no answer at all (the kernel's input guard already drops
//! them when they come in on a non-LAN device); a Host header that is not one of the router's own IP
//! literals is refused (DNS rebinding).

use super::carried;
use super::control::{self, Igd};
use super::description::{self as desc, wants_v1, Identity, Service};
use super::discovery::{self, Discovery};
use super::error::{Refusal, UpnpError};
use super::gena::{self, Subscriptions};
use super::leases::Mapping;
use super::policy::Change;
use super::soap;
use crate::clock::unix_now;
use crate::config::{Config, DirectAccess};
use crate::consts::{
    API_MAX_HEADERS, HTTP_MAX_HEAD, HTTP_MAX_HEADER_LINE, HTTP_MAX_REQUEST_LINE, UPNP_MAX_BODY,
};
use crate::http::host::{cross_site, host_is_own_ip};
use crate::http::{Handler, Limits, Listeners, Request, Response};
use crate::net::sysfs::Link;
use crate::net::NetState;
use crate::owner::{AskError, Shared};
use crate::status::Decision;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The bounds of an IGD request (SOAP bodies are a few hundred bytes).
pub const IGD_LIMITS: Limits = Limits {
    max_request_line: HTTP_MAX_REQUEST_LINE,
    max_header_line: HTTP_MAX_HEADER_LINE,
    max_headers: API_MAX_HEADERS,
    max_head: HTTP_MAX_HEAD,
    max_body: UPNP_MAX_BODY,
};

pub struct IgdServer {
    shared: Arc<Shared>,
    gena: Arc<Subscriptions>,
    identity: Mutex<Identity>,
}

struct Reply {
    status: u16,
    body: String,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
}

fn reply(status: u16, body: impl Into<String>) -> Reply {
    Reply {
        status,
        body: body.into(),
        content_type: "text/plain; charset=\"utf-8\"",
        headers: Vec::new(),
    }
}

fn xml_reply(status: u16, body: String) -> Reply {
    Reply {
        status,
        body,
        content_type: "text/xml; charset=\"utf-8\"",
        headers: Vec::new(),
    }
}

/// The live device as the actions see it.
struct LiveIgd<'a> {
    server: &'a IgdServer,
    /// The TCP peer of the control request.
    peer: Ipv4Addr,
}

impl Igd for LiveIgd<'_> {
    fn mappings(&self) -> Vec<Mapping> {
        self.server.shared.snapshot.lock().unwrap().mappings.clone()
    }
    fn now(&self) -> u64 {
        unix_now()
    }
    fn external_ip(&self) -> Option<Ipv4Addr> {
        self.server.shared.snapshot.lock().unwrap().external_ipv4()
    }
    fn link(&self) -> Link {
        let device = self
            .server
            .shared
            .snapshot
            .lock()
            .unwrap()
            .config
            .wan_device
            .clone();
        device
            .as_deref()
            .map(crate::net::sysfs::link)
            .unwrap_or_default()
    }
    fn uptime(&self) -> u64 {
        self.server
            .shared
            .snapshot
            .lock()
            .unwrap()
            .started
            .elapsed()
            .as_secs()
    }
    fn change(&self, change: Change) -> Result<Vec<Mapping>, Refusal> {
        let shared = &self.server.shared;
        let held: Vec<u16> = (shared.snapshot.lock().unwrap().mappings.iter())
            .map(|m| m.external_port)
            .collect();
        carried::change(
            change,
            &held,
            |c| self.ask(c),
            |port| shared.snapshot.lock().unwrap().upstream.word_on(port),
        )
    }
    fn malformed(&self, call: &soap::Call, refusal: &Refusal) {
        let port = call.args.get("NewExternalPort");
        self.server.shared.record(Decision::refused(
            self.peer,
            call.action.name,
            port.and_then(|p| p.trim().parse().ok()),
            refusal,
        ));
    }
}

impl LiveIgd<'_> {
    /// Hands a change to the state owner and waits for its answer.
    fn ask(&self, change: Change) -> Result<Vec<Mapping>, Refusal> {
        match self.server.shared.ask(change) {
            Ok(result) => result.map(|o| o.mappings),
            Err(e) => Err(Refusal::new(
                UpnpError::ActionFailed,
                match e {
                    AskError::Stopping => "the agent is stopping",
                    AskError::NoAnswer => "the agent did not answer in time",
                },
            )),
        }
    }
}

impl IgdServer {
    /// `None` (no answer at all) for a request from outside the LAN subnets.
    fn handle(&self, request: Request) -> Option<Response> {
        let SocketAddr::V4(peer) = request.peer else {
            return None;
        };
        let from_lan = {
            let snap = self.shared.snapshot.lock().unwrap();
            crate::net::subnet::in_nets(*peer.ip(), &snap.facts.lan_ipv4_nets)
        };
        if !from_lan {
            debug!("UPnP: ignoring a request from {peer}, outside the LAN subnets");
            return None;
        }
        let r = self.route(&request, *peer.ip());
        let mut response = Response::new(r.status, r.content_type, r.body)
            .with_header("Server", super::ssdp::server_header());
        for (k, v) in r.headers {
            response = response.with_header(k, v);
        }
        Some(response)
    }

    fn route(&self, request: &Request, peer: Ipv4Addr) -> Reply {
        let own = self.shared.snapshot.lock().unwrap().net.own_ips();
        let Some(host) = request.header("Host").filter(|h| host_is_own_ip(h, &own)) else {
            return reply(403, "the Host header must be this router's IP address");
        };
        if let Some(why) = cross_site(
            request.header("Origin"),
            request.header("Sec-Fetch-Site"),
            host,
        ) {
            return reply(403, why);
        }
        let v1 = wants_v1(request.header("User-Agent"));
        let version = if v1 { 1 } else { 2 };
        let path = request.target.split('?').next().unwrap_or("").to_string();
        let method = request.method.to_ascii_uppercase();
        let identity = self.identity.lock().unwrap().clone();
        match (method.as_str(), path.as_str()) {
            ("GET" | "HEAD", desc::DESC_PATH) => {
                xml_reply(200, desc::root_description(&identity, version))
            }
            ("GET" | "HEAD", desc::WANIP_SCPD_PATH) => {
                xml_reply(200, desc::scpd(Service::WanIp, version, identity.config_id))
            }
            ("GET" | "HEAD", desc::COMMON_SCPD_PATH) => {
                xml_reply(200, desc::scpd(Service::CommonIf, 1, identity.config_id))
            }
            ("POST", desc::WANIP_CONTROL_PATH) => self.control(request, Service::WanIp, peer),
            ("POST", desc::COMMON_CONTROL_PATH) => self.control(request, Service::CommonIf, peer),
            ("SUBSCRIBE" | "UNSUBSCRIBE", desc::WANIP_EVENT_PATH) => {
                self.events(request, Service::WanIp, peer)
            }
            ("SUBSCRIBE" | "UNSUBSCRIBE", desc::COMMON_EVENT_PATH) => {
                self.events(request, Service::CommonIf, peer)
            }
            (
                _,
                desc::DESC_PATH
                | desc::WANIP_SCPD_PATH
                | desc::COMMON_SCPD_PATH
                | desc::WANIP_CONTROL_PATH
                | desc::COMMON_CONTROL_PATH
                | desc::WANIP_EVENT_PATH
                | desc::COMMON_EVENT_PATH,
            ) => reply(405, "method not allowed"),
            _ => reply(404, "not found"),
        }
    }

    fn control(&self, request: &Request, service: Service, peer: Ipv4Addr) -> Reply {
        // A control request is XML and names its action in SOAPAction, as every UPnP stack sends it.
        // A browser can send neither to another site without asking first (a CORS preflight, which
        // this server never grants): a page the user opens cannot act in the Command Center's name.
        if !soap::is_xml(request.header("Content-Type")) {
            return reply(415, "a control request is text/xml");
        }
        let Some(soap_action) = request.header("SOAPAction") else {
            return reply(
                400,
                "a control request names its action in a SOAPAction header",
            );
        };
        // (The HTTP layer read the body only after checking its declared length against the bound.)
        let Ok(body) = std::str::from_utf8(&request.body) else {
            return xml_reply(500, soap::fault(UpnpError::InvalidAction));
        };
        let call = match soap::parse_call(body, soap_action, service) {
            Ok(c) => c,
            Err(refusal) => {
                debug!("UPnP: bad control request from {peer}: {refusal}");
                return xml_reply(500, soap::fault(refusal.error));
            }
        };
        let igd = LiveIgd { server: self, peer };
        match control::handle(&igd, &call, peer) {
            Ok(outputs) => xml_reply(200, soap::response(&call, &outputs)),
            Err(refusal) => xml_reply(500, soap::fault(refusal.error)),
        }
    }

    /// The status document counts subscriptions as they are now (they change without the owner).
    fn publish_subscriptions(&self) {
        if let Some(u) = self.shared.snapshot.lock().unwrap().upnp.as_mut() {
            u.subscriptions = self.gena.count();
        }
    }

    fn events(&self, request: &Request, service: Service, peer: Ipv4Addr) -> Reply {
        let sid = request.header("SID").map(str::to_string);
        let callback = request.header("Callback");
        let nt = request.header("NT");
        let timeout = gena::parse_timeout(request.header("Timeout"));
        let unsubscribe = request.method.eq_ignore_ascii_case("UNSUBSCRIBE");
        let ok = |sid: &str, timeout: u64| Reply {
            status: 200,
            body: String::new(),
            content_type: "text/plain",
            headers: vec![
                ("SID", sid.to_string()),
                ("TIMEOUT", format!("Second-{timeout}")),
            ],
        };
        let refused = |e: gena::GenaError| reply(e.status, e.reason);
        match (unsubscribe, sid) {
            (true, Some(sid)) => match self.gena.unsubscribe(service, &sid, peer) {
                Ok(()) => {
                    self.publish_subscriptions();
                    reply(200, "")
                }
                Err(e) => refused(e),
            },
            (true, None) => reply(412, "SID required"),
            (false, Some(_)) if callback.is_some() || nt.is_some() => {
                reply(400, "SID cannot be combined with CALLBACK or NT")
            }
            (false, Some(sid)) => match self.gena.renew(service, &sid, peer, timeout) {
                Ok(t) => ok(&sid, t),
                Err(e) => refused(e),
            },
            (false, None) => {
                if nt != Some("upnp:event") {
                    return reply(412, "NT must be upnp:event");
                }
                let callback = match gena::parse_callback(callback.unwrap_or(""), peer) {
                    Ok(c) => c,
                    Err(why) => {
                        notice!("UPnP: SUBSCRIBE from {peer} refused: {why}");
                        return reply(412, why);
                    }
                };
                match self.gena.subscribe(service, callback, timeout) {
                    Ok((sid, t)) => {
                        self.publish_subscriptions();
                        // The initial event must follow the response; the notifier thread sends it
                        // after this reply has been written (it connects afresh).
                        let gena = self.gena.clone();
                        let s = sid.clone();
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_millis(50));
                            gena.initial_event(&s);
                        });
                        ok(&sid, t)
                    }
                    Err(e) => refused(e),
                }
            }
        }
    }
}

/// The evented variables of both services, from the published state.
pub fn evented(shared: &Shared) -> [(Service, Vec<(&'static str, String)>); 2] {
    let snap = shared.snapshot.lock().unwrap();
    let ip = snap.facts.wan_ipv4.first().map(|a| a.to_string());
    let link = snap
        .config
        .wan_device
        .as_deref()
        .map(crate::net::sysfs::link)
        .unwrap_or_default();
    let connected = ip.is_some() && link.up;
    [
        (
            Service::WanIp,
            vec![
                ("PossibleConnectionTypes", "IP_Routed".into()),
                (
                    "ConnectionStatus",
                    if connected {
                        "Connected"
                    } else {
                        "Disconnected"
                    }
                    .into(),
                ),
                ("ExternalIPAddress", ip.unwrap_or_default()),
                (
                    "PortMappingNumberOfEntries",
                    snap.mappings.len().to_string(),
                ),
            ],
        ),
        (
            Service::CommonIf,
            vec![(
                "PhysicalLinkStatus",
                if link.up { "Up" } else { "Down" }.into(),
            )],
        ),
    ]
}

/// The whole IGD: listeners, SSDP, subscriptions. Runs only in mode `upnp`.
pub struct IgdRuntime {
    listeners: Listeners,
    discovery: Option<Discovery>,
    server: Option<Arc<IgdServer>>,
    handler: Option<Handler>,
    gena: Arc<Subscriptions>,
}

impl Default for IgdRuntime {
    fn default() -> Self {
        IgdRuntime {
            listeners: Listeners::new("UPnP IGD", desc::DESC_PATH, IGD_LIMITS),
            discovery: None,
            server: None,
            handler: None,
            gena: Arc::new(Subscriptions::new()),
        }
    }
}

impl IgdRuntime {
    /// Brings the IGD in line with the configuration and the LAN addresses.
    pub fn sync(
        &mut self,
        config: &Config,
        net: &NetState,
        identity: &Identity,
        shared: &Arc<Shared>,
    ) {
        let active = config.enabled && config.direct_access == DirectAccess::Upnp;
        if !active {
            return self.stop();
        }
        let server = self
            .server
            .get_or_insert_with(|| {
                Arc::new(IgdServer {
                    shared: shared.clone(),
                    gena: self.gena.clone(),
                    identity: Mutex::new(identity.clone()),
                })
            })
            .clone();
        *server.identity.lock().unwrap() = identity.clone();
        let handler = self
            .handler
            .get_or_insert_with(|| {
                let s = server.clone();
                Arc::new(move |r| s.handle(r)) as Handler
            })
            .clone();
        let lan = discovery::lan_interfaces(&config.lan_devices, net);
        let wanted: Vec<SocketAddr> = lan
            .iter()
            .flat_map(|l| &l.addrs)
            .map(|(ip, _)| SocketAddr::new(IpAddr::V4(*ip), config.upnp.port))
            .collect();
        let trusted = net.command_center_addresses(&config.command_centers);
        self.gena.set_trusted(trusted.clone());
        self.listeners.set_trusted(trusted.clone());
        self.listeners.sync(&wanted, &handler);
        let settings = discovery::Settings {
            identity: identity.clone(),
            http_port: config.upnp.port,
            lan,
            notify_interval: config.upnp.notify_interval,
            trusted,
        };
        match &self.discovery {
            Some(d) => d.update(settings),
            None => match Discovery::start(settings) {
                Ok(d) => {
                    info!(
                        "SSDP listening on udp/{} on {}",
                        super::ssdp::PORT,
                        config.lan_devices.join(", ")
                    );
                    self.discovery = Some(d);
                }
                Err(e) => error!(
                    "SSDP cannot listen on udp/{}: {e} (is miniupnpd running?)",
                    super::ssdp::PORT
                ),
            },
        }
        self.publish(shared);
    }

    /// Sends changed evented variables to subscribers.
    pub fn publish(&self, shared: &Shared) {
        if self.server.is_none() {
            return;
        }
        for (service, vars) in evented(shared) {
            self.gena.publish(service, &vars);
        }
    }

    pub fn subscriptions(&self) -> usize {
        self.gena.count()
    }

    /// Stops listening and says ssdp:byebye.
    pub fn stop(&mut self) {
        self.listeners.stop();
        if let Some(d) = self.discovery.take() {
            d.stop();
            info!("SSDP stopped (ssdp:byebye sent)");
        }
        self.server = None;
        self.handler = None;
    }
}
