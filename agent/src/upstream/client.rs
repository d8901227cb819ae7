//! Sends one step of the cascade to the gateway over PCP, NAT-PMP or its UPnP IGD, and returns its
//! answer. UDP sockets are bound to the WAN device and address and connected to the gateway's port:
//! the kernel drops datagrams from anyone else, and an ICMP port unreachable (nothing listens) ends the
//! wait at once. The device matters: any LAN host can send a datagram whose source is the gateway's
//! address and port, but only the gateway's arrive on the WAN (NAT-PMP has no nonce to tell them
//! apart). The IGD is found once per gateway (a unicast search, its description) and remembered.

use super::cascade::{Held, Outcome, Place, Step};
use super::igd::{self, Control};
use super::{natpmp, pcp};
use crate::config::UpstreamProtocol;
use crate::upnp::error::UpnpError;
use nix::sys::socket::{setsockopt, sockopt};
use std::ffi::OsString;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// The first wait for an answer, doubled for each of the `TRIES` sends (RFC 6886 §3.1 starts at
/// 250 ms): about 3.75 s in all before the gateway counts as silent.
const FIRST_WAIT: Duration = Duration::from_millis(250);
const TRIES: u32 = 4;
/// SSDP's port, where the gateway's IGD answers a search.
const SSDP_PORT: u16 = 1900;
/// How long an HTTP exchange with the IGD may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(3);
/// What the agent's mappings are called in the gateway's table.
const DESCRIPTION: &str = "wilife-agent";

/// What is remembered between steps: the WAN device, and the gateway's IGD control URL.
#[derive(Debug, Default)]
pub struct Session {
    pub wan_device: Option<String>,
    igd: Option<(Ipv4Addr, Control)>,
}

/// Sends `step` to the gateway of `place`, asking for `lease` seconds.
pub fn send(session: &mut Session, place: Place, step: &Step, lease: u32) -> Outcome {
    let (wan, gateway) = place;
    let protocol = match step {
        Step::Map { protocol, .. } => *protocol,
        Step::Delete(h) | Step::Probe(h) => h.protocol,
    };
    if protocol == UpstreamProtocol::Upnp {
        return upnp_step(session, place, step, lease);
    }
    let socket = match open(session, place, pcp::SERVER_PORT) {
        Ok(s) => s,
        Err(e) => {
            warning!("cannot open a socket from {wan} to the gateway {gateway}: {e}");
            return Outcome::Silent;
        }
    };
    match step {
        Step::Map { port, nonce, .. } if protocol == UpstreamProtocol::Pcp => {
            let nonce = match nonce.map_or_else(crate::random::bytes, Ok) {
                Ok(n) => n,
                Err(e) => {
                    warning!("no random nonce for PCP: {e}");
                    return Outcome::Silent;
                }
            };
            pcp_map(&socket, wan, *port, nonce, lease)
        }
        Step::Map { port, .. } => natpmp_map(&socket, *port, lease),
        Step::Probe(_) => probe(&socket, wan, protocol),
        Step::Delete(held) => {
            let asked = if protocol == UpstreamProtocol::Pcp {
                pcp_map(&socket, wan, held.port, held.nonce, 0)
            } else {
                natpmp_map(&socket, held.port, 0)
            };
            match asked {
                Outcome::Mapped { .. } => Outcome::Deleted,
                other => other,
            }
        }
    }
}

fn open(session: &Session, (wan, gateway): Place, port: u16) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddrV4::new(wan, 0))?;
    let Some(device) = &session.wan_device else {
        return Err(std::io::Error::other(
            "no WAN device to take the gateway's answers from",
        ));
    };
    setsockopt(&socket, sockopt::BindToDevice, &OsString::from(device))?;
    socket.connect(SocketAddrV4::new(gateway, port))?;
    Ok(socket)
}

/// Sends `request` until `accept` takes an answer, with growing waits; `None`: silence.
fn exchange<T>(
    socket: &UdpSocket,
    request: &[u8],
    accept: impl Fn(&[u8]) -> Option<T>,
) -> Option<T> {
    let mut buf = [0u8; 2048];
    let mut wait = FIRST_WAIT;
    for _ in 0..TRIES {
        if socket.send(request).is_err() {
            return None;
        }
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match socket.recv(&mut buf) {
                Ok(n) => {
                    if let Some(answer) = accept(&buf[..n]) {
                        return Some(answer);
                    }
                }
                // Nothing listens on the gateway's port (ICMP port unreachable).
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => return None,
                Err(_) => break,
            }
        }
        wait *= 2;
    }
    None
}

fn pcp_map(
    socket: &UdpSocket,
    wan: Ipv4Addr,
    port: u16,
    nonce: [u8; 12],
    lifetime: u32,
) -> Outcome {
    let request = pcp::MapRequest {
        nonce,
        client: wan,
        internal_port: port,
        external_port: port,
        lifetime,
    };
    // Answers to other requests (another nonce or port) and garbage are not ours: wait on.
    let answer = exchange(socket, &request.encode(), |d| match pcp::decode(d) {
        Ok(pcp::Answer::NatPmpOnly) => Some(Outcome::Speaks(UpstreamProtocol::Natpmp)),
        Ok(pcp::Answer::Map(m)) if m.nonce == nonce && m.internal_port == port => {
            Some(if m.result == pcp::SUCCESS {
                Outcome::Mapped {
                    external_port: m.external_port,
                    external_address: m.external_address,
                    lifetime: m.lifetime,
                    epoch: Some(m.epoch),
                    nonce,
                }
            } else if m.result == pcp::CANNOT_PROVIDE_EXTERNAL {
                Outcome::Taken
            } else {
                Outcome::Refused {
                    code: m.result.into(),
                    name: pcp::result_name(m.result),
                }
            })
        }
        _ => None,
    });
    match answer {
        // PREFER_FAILURE is only a wish: a server may still hand out another port. The one asked for
        // is someone else's there, and ours goes back at once.
        Some(Outcome::Mapped { external_port, .. }) if lifetime > 0 && external_port != port => {
            let _ = pcp_map(socket, wan, port, nonce, 0);
            Outcome::Taken
        }
        other => other.unwrap_or(Outcome::Silent),
    }
}

/// The gateway's epoch: PCP ANNOUNCE, or NAT-PMP's address request.
fn probe(socket: &UdpSocket, wan: Ipv4Addr, protocol: UpstreamProtocol) -> Outcome {
    let epoch =
        match protocol {
            UpstreamProtocol::Pcp => exchange(socket, &pcp::announce_request(wan), |d| {
                match pcp::decode(d) {
                    Ok(pcp::Answer::Announce {
                        result: pcp::SUCCESS,
                        epoch,
                    }) => Some(epoch),
                    _ => None,
                }
            }),
            UpstreamProtocol::Natpmp => natpmp_address(socket).map(|(epoch, _)| epoch),
            UpstreamProtocol::Upnp => None,
        };
    epoch.map_or(Outcome::Silent, Outcome::Epoch)
}

/// NAT-PMP's address request: the gateway's epoch and external address.
fn natpmp_address(socket: &UdpSocket) -> Option<(u32, Ipv4Addr)> {
    exchange(
        socket,
        &natpmp::address_request(),
        |d| match natpmp::decode(d) {
            Ok(natpmp::Answer::Address {
                result: natpmp::SUCCESS,
                epoch,
                address,
            }) => Some((epoch, address)),
            _ => None,
        },
    )
}

fn natpmp_map(socket: &UdpSocket, port: u16, lifetime: u32) -> Outcome {
    let external = if lifetime == 0 { 0 } else { port };
    let request = natpmp::map_request(port, external, lifetime);
    let mapped = exchange(socket, &request, |d| match natpmp::decode(d) {
        Ok(natpmp::Answer::Map {
            result,
            epoch,
            internal_port,
            external_port,
            lifetime,
        }) if internal_port == port => Some((result, epoch, external_port, lifetime)),
        _ => None,
    });
    let Some((result, epoch, external_port, granted)) = mapped else {
        return Outcome::Silent;
    };
    if result != natpmp::SUCCESS {
        return Outcome::Refused {
            code: result,
            name: natpmp::result_name(result),
        };
    }
    if lifetime == 0 {
        return Outcome::Deleted;
    }
    if external_port != port {
        // It gave another port: the one asked for is someone else's there. Ours goes back.
        let _ = exchange(socket, &natpmp::map_request(port, 0, 0), |d| {
            natpmp::decode(d).ok()
        });
        return Outcome::Taken;
    }
    // NAT-PMP names the external address in a request of its own.
    let address = natpmp_address(socket).map(|(_, address)| address);
    match address {
        Some(external_address) => Outcome::Mapped {
            external_port,
            external_address,
            lifetime: granted,
            epoch: Some(epoch),
            nonce: [0; 12],
        },
        None => Outcome::Silent,
    }
}

/// A step over the gateway's UPnP IGD (found first, once).
fn upnp_step(session: &mut Session, place: Place, step: &Step, lease: u32) -> Outcome {
    let (wan, gateway) = place;
    let known = session.igd.as_ref().filter(|(gw, _)| *gw == gateway);
    let control = match known {
        Some((_, c)) => c.clone(),
        None => match discover(session, place) {
            Some(c) => {
                session.igd = Some((gateway, c.clone()));
                c
            }
            None => return Outcome::Silent,
        },
    };
    let key = |p: u16| {
        vec![
            ("NewRemoteHost", String::new()),
            ("NewExternalPort", p.to_string()),
            ("NewProtocol", "TCP".to_string()),
        ]
    };
    let soap = |action: &str, args: &[(&str, String)]| soap(gateway, &control, action, args);
    let answer = match step {
        Step::Map { port, .. } => {
            let mut args = key(*port);
            args.extend([
                ("NewInternalPort", port.to_string()),
                ("NewInternalClient", wan.to_string()),
                ("NewEnabled", "1".to_string()),
                ("NewPortMappingDescription", DESCRIPTION.to_string()),
                ("NewLeaseDuration", lease.to_string()),
            ]);
            let mut added = soap("AddPortMapping", &args);
            let permanent_only = UpnpError::OnlyPermanentLeasesSupported.code();
            if matches!(&added, Err(Some(f)) if f.code == permanent_only) {
                // It keeps mappings until removed; the renewals and the deletion stay ours.
                if let Some(lease) = args.last_mut() {
                    lease.1 = "0".to_string();
                }
                added = soap("AddPortMapping", &args);
            }
            let address = added.and_then(|_| soap("GetExternalIPAddress", &[]));
            if matches!(address, Err(None)) {
                // Mapped, but no word on where: not left there unknown to us (asked again later).
                let _ = soap("DeletePortMapping", &key(*port));
            }
            address
        }
        Step::Delete(Held { port, .. }) => soap("DeletePortMapping", &key(*port)),
        Step::Probe(Held { port, .. }) => soap("GetSpecificPortMappingEntry", &key(*port)),
    };
    let no_such_entry = UpnpError::NoSuchEntryInArray.code();
    match (step, answer) {
        (Step::Map { port, .. }, Ok(out)) => {
            let address = (out.iter())
                .find(|(name, _)| name == "NewExternalIPAddress")
                .and_then(|(_, v)| v.parse().ok());
            address.map_or(Outcome::Silent, |external_address| Outcome::Mapped {
                external_port: *port,
                external_address,
                lifetime: lease,
                epoch: None,
                nonce: [0; 12],
            })
        }
        (Step::Delete(_), Ok(_)) => Outcome::Deleted,
        (Step::Probe(_), Ok(_)) => Outcome::Kept,
        (Step::Probe(_), Err(Some(f))) if f.code == no_such_entry => Outcome::Forgotten,
        (Step::Probe(_), Err(_)) => Outcome::Silent,
        (Step::Map { .. }, Err(Some(f))) if f.code == UpnpError::ConflictInMappingEntry.code() => {
            Outcome::Taken
        }
        (_, Err(Some(f))) => Outcome::Refused {
            code: f.code,
            name: UpnpError::from_code(f.code).map_or("unknown", UpnpError::description),
        },
        (_, Err(None)) => {
            // The IGD may have moved (another port after a restart): it is found again next time.
            session.igd = None;
            Outcome::Silent
        }
    }
}

/// The IGD of the gateway: a unicast search, then its description.
fn discover(session: &Session, place: Place) -> Option<Control> {
    let (_, gateway) = place;
    let socket = open(session, place, SSDP_PORT).ok()?;
    let search = igd::search(gateway);
    let (port, path) = exchange(&socket, search.as_bytes(), |d| {
        igd::location(d, gateway).ok()
    })?;
    let (status, description) = http(gateway, port, "GET", &path, None).ok()?;
    if status != 200 {
        warning!("the gateway's IGD description answered HTTP {status}");
        return None;
    }
    igd::control(&description, gateway, port)
        .map_err(|e| warning!("the gateway's IGD description is unusable: {e}"))
        .ok()
}

/// One SOAP action: its output arguments, or the UPnP error (`None`: no usable answer at all).
fn soap(
    gateway: Ipv4Addr,
    control: &Control,
    action: &str,
    args: &[(&str, String)],
) -> Result<Vec<(String, String)>, Option<igd::Fault>> {
    let body = igd::envelope(&control.service, action, args);
    let header = format!("SOAPAction: \"{}#{action}\"", control.service);
    let soap = Some((header.as_str(), body.as_str()));
    let (_, answer) = http(gateway, control.port, "POST", &control.path, soap).map_err(|_| None)?;
    igd::answer(&answer).map_err(|f| (f.code != 0).then_some(f))
}

/// One HTTP/1.1 exchange with the gateway, its answer read within `igd::MAX_DOCUMENT` bytes and
/// `HTTP_TIMEOUT`: (status, body).
fn http(
    gateway: Ipv4Addr,
    port: u16,
    method: &str,
    path: &str,
    soap: Option<(&str, &str)>,
) -> std::io::Result<(u16, String)> {
    let to = SocketAddrV4::new(gateway, port).into();
    let mut s = TcpStream::connect_timeout(&to, HTTP_TIMEOUT)?;
    s.set_read_timeout(Some(HTTP_TIMEOUT))?;
    s.set_write_timeout(Some(HTTP_TIMEOUT))?;
    let (extra, body) = soap.map_or((String::new(), ""), |(header, body)| {
        let length = body.len();
        let kind = "Content-Type: text/xml; charset=\"utf-8\"";
        (
            format!("{header}\r\n{kind}\r\nContent-Length: {length}\r\n"),
            body,
        )
    });
    let host = format!("Host: {gateway}:{port}");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\n{host}\r\n{extra}Connection: close\r\n\r\n{body}"
    )?;
    let mut raw = Vec::new();
    s.take(igd::MAX_DOCUMENT as u64 + 4096)
        .read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) =
        (text.split_once("\r\n\r\n")).ok_or_else(|| std::io::Error::other("no HTTP head"))?;
    let status = (head.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    Ok((
        status,
        if chunked {
            unchunk(body)
        } else {
            body.to_string()
        },
    ))
}

/// A chunked body's data (what a cut-short one holds so far).
fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16);
        match size {
            Ok(n) if n > 0 && after.len() >= n && after.is_char_boundary(n) => {
                out.push_str(&after[..n]);
                rest = after[n..].trim_start_matches("\r\n");
            }
            _ => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined_and_cut_short_ones_kept_so_far() {
        assert_eq!(
            unchunk("5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
        assert_eq!(unchunk("5\r\nhel"), "");
        assert_eq!(unchunk("zz\r\nhello"), "");
        assert_eq!(unchunk("3\r\nabc\r\n2\r\n"), "abc");
    }
}
