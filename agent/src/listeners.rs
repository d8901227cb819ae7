//! A set of tiny_http listeners, one per address, kept in step with the addresses wanted (LAN addresses
//! come and go). Shared by the JSON API and the UPnP IGD.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use tiny_http::{Request, Server};

pub type Handler = Arc<dyn Fn(Request) + Send + Sync>;

pub struct Listeners {
    /// For the log: "API", "UPnP IGD".
    label: &'static str,
    /// Shown after the address in the log line: "/api/v1/".
    path: &'static str,
    running: HashMap<SocketAddr, (Arc<Server>, JoinHandle<()>)>,
}

impl Listeners {
    pub fn new(label: &'static str, path: &'static str) -> Self {
        Listeners {
            label,
            path,
            running: HashMap::new(),
        }
    }

    /// Starts listeners for new addresses and stops those no longer wanted.
    pub fn sync(&mut self, wanted: &[SocketAddr], handler: &Handler) {
        let stale: Vec<SocketAddr> = self
            .running
            .keys()
            .filter(|a| !wanted.contains(a))
            .copied()
            .collect();
        for addr in stale {
            if let Some((server, handle)) = self.running.remove(&addr) {
                server.unblock();
                let _ = handle.join();
                info!("{} stopped listening on {addr}", self.label);
            }
        }
        for &addr in wanted {
            if self.running.contains_key(&addr) {
                continue;
            }
            match Server::http(addr) {
                Ok(server) => {
                    let server = Arc::new(server);
                    let (s, h) = (server.clone(), handler.clone());
                    let handle = std::thread::spawn(move || {
                        for request in s.incoming_requests() {
                            h(request);
                        }
                    });
                    info!("{} listening on http://{addr}{}", self.label, self.path);
                    self.running.insert(addr, (server, handle));
                }
                Err(e) => warning!("{} cannot listen on {addr}: {e}", self.label),
            }
        }
    }

    pub fn stop(&mut self) {
        self.sync(&[], &(Arc::new(|_| {}) as Handler));
    }
}
