//! Sends one step of the cascade to the gateway over PCP or NAT-PMP and returns its answer. A UDP
//! socket bound to the WAN address and connected to the gateway's port 5351: the kernel drops
//! datagrams from anyone else, and an ICMP port unreachable (nothing listens) ends the wait at once.

use super::cascade::{Outcome, Place, Step};
use super::{natpmp, pcp};
use crate::config::UpstreamProtocol;
use std::io::ErrorKind;
use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// The first wait for an answer, doubled for each of the `TRIES` sends (RFC 6886 §3.1 starts at
/// 250 ms): about 3.75 s in all before the gateway counts as silent.
const FIRST_WAIT: Duration = Duration::from_millis(250);
const TRIES: u32 = 4;

/// Sends `step` to the gateway of `place`, asking for `lease` seconds.
pub fn send(place: Place, step: &Step, lease: u32) -> Outcome {
    let (wan, gateway) = place;
    let socket = match open(place) {
        Ok(s) => s,
        Err(e) => {
            warning!("cannot open a socket from {wan} to the gateway {gateway}: {e}");
            return Outcome::Silent;
        }
    };
    match step {
        Step::Map {
            port,
            protocol: UpstreamProtocol::Pcp,
            nonce,
        } => {
            let nonce = match nonce.map_or_else(crate::random::bytes, Ok) {
                Ok(n) => n,
                Err(e) => {
                    warning!("no random nonce for PCP: {e}");
                    return Outcome::Silent;
                }
            };
            pcp_map(&socket, wan, *port, nonce, lease)
        }
        Step::Map {
            port,
            protocol: UpstreamProtocol::Natpmp,
            ..
        } => natpmp_map(&socket, *port, lease),
        // The UPnP IGD client is not built yet (issue 16, a later step): it counts as no answer.
        Step::Map { .. } => Outcome::Silent,
        Step::Probe(protocol) => probe(&socket, wan, *protocol),
        Step::Delete(held) => {
            let asked = match held.protocol {
                UpstreamProtocol::Pcp => pcp_map(&socket, wan, held.port, held.nonce, 0),
                UpstreamProtocol::Natpmp => natpmp_map(&socket, held.port, 0),
                UpstreamProtocol::Upnp => Outcome::Silent,
            };
            match asked {
                Outcome::Mapped { .. } => Outcome::Deleted,
                other => other,
            }
        }
    }
}

fn open((wan, gateway): Place) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddrV4::new(wan, 0))?;
    socket.connect(SocketAddrV4::new(gateway, pcp::SERVER_PORT))?;
    Ok(socket)
}

/// Sends `request` until `accept` takes an answer, with growing waits; `None`: silence.
fn exchange<T>(
    socket: &UdpSocket,
    request: &[u8],
    accept: impl Fn(&[u8]) -> Option<T>,
) -> Option<T> {
    let mut buf = [0u8; 1100];
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
    wan: std::net::Ipv4Addr,
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
                    epoch: m.epoch,
                    nonce,
                }
            } else {
                Outcome::Refused {
                    code: m.result.into(),
                    name: pcp::result_name(m.result),
                }
            })
        }
        _ => None,
    });
    answer.unwrap_or(Outcome::Silent)
}

/// The gateway's epoch: PCP ANNOUNCE, or NAT-PMP's address request.
fn probe(socket: &UdpSocket, wan: std::net::Ipv4Addr, protocol: UpstreamProtocol) -> Outcome {
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
            UpstreamProtocol::Natpmp => {
                exchange(
                    socket,
                    &natpmp::address_request(),
                    |d| match natpmp::decode(d) {
                        Ok(natpmp::Answer::Address {
                            result: natpmp::SUCCESS,
                            epoch,
                            ..
                        }) => Some(epoch),
                        _ => None,
                    },
                )
            }
            UpstreamProtocol::Upnp => None,
        };
    epoch.map_or(Outcome::Silent, Outcome::Epoch)
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
    // NAT-PMP names the external address in a request of its own.
    let address = exchange(
        socket,
        &natpmp::address_request(),
        |d| match natpmp::decode(d) {
            Ok(natpmp::Answer::Address {
                result: natpmp::SUCCESS,
                address,
                ..
            }) => Some(address),
            _ => None,
        },
    );
    match address {
        Some(external_address) => Outcome::Mapped {
            external_port,
            external_address,
            lifetime: granted,
            epoch,
            nonce: [0; 12],
        },
        None => Outcome::Silent,
    }
}
