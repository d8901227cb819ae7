//! PCP (RFC 6887) MAP requests and their answers, as bytes: no socket here.
//!
//! The router asks the gateway upstream to forward an external TCP port to the router's own WAN
//! address and port. A mapping is renewed by sending the same request again (same nonce), and deleted
//! by sending it with lifetime 0. The answer names the external address and port the internet sees,
//! and the server's epoch, whose going backwards means the server lost its mappings (§8.5).

use std::net::{Ipv4Addr, Ipv6Addr};

/// The PCP (and NAT-PMP) server port on the gateway.
pub const SERVER_PORT: u16 = 5351;
const VERSION: u8 = 2;
const OPCODE_ANNOUNCE: u8 = 0;
const OPCODE_MAP: u8 = 1;
/// The R bit: this is a response.
const RESPONSE: u8 = 0x80;
const HEADER_LEN: usize = 24;
const MAP_LEN: usize = 36;
/// The largest PCP message (§7).
const MAX_LEN: usize = 1100;
const PROTOCOL_TCP: u8 = 6;
/// PREFER_FAILURE (§13.2): map the port asked for or fail, never another one.
const OPTION_PREFER_FAILURE: u8 = 2;

/// PCP result codes (§7.4) the agent tells apart.
pub const SUCCESS: u8 = 0;
pub const UNSUPP_VERSION: u8 = 1;
/// The asked external port is taken (or any port is refused) with PREFER_FAILURE.
pub const CANNOT_PROVIDE_EXTERNAL: u8 = 11;

/// The name RFC 6887 gives a result code, for logs and the verdict.
pub fn result_name(code: u8) -> &'static str {
    match code {
        0 => "SUCCESS",
        1 => "UNSUPP_VERSION",
        2 => "NOT_AUTHORIZED",
        3 => "MALFORMED_REQUEST",
        4 => "UNSUPP_OPCODE",
        5 => "UNSUPP_OPTION",
        6 => "MALFORMED_OPTION",
        7 => "NETWORK_FAILURE",
        8 => "NO_RESOURCES",
        9 => "UNSUPP_PROTOCOL",
        10 => "USER_EX_QUOTA",
        11 => "CANNOT_PROVIDE_EXTERNAL",
        12 => "ADDRESS_MISMATCH",
        13 => "EXCESSIVE_REMOTE_PEERS",
        _ => "unknown",
    }
}

/// A MAP request for one TCP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapRequest {
    /// Ties the answers, renewals and the deletion to this mapping (§11.1).
    pub nonce: [u8; 12],
    /// The router's WAN address, as the server sees the request's source.
    pub client: Ipv4Addr,
    /// The port on the router's WAN address the mapping goes to.
    pub internal_port: u16,
    /// The external port asked for.
    pub external_port: u16,
    /// Seconds; 0 deletes the mapping.
    pub lifetime: u32,
}

impl MapRequest {
    /// The datagram: header, MAP body, and PREFER_FAILURE (the agent picks the next port itself, so
    /// it always knows which port the internet sees before it says so). A deletion carries no option.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(HEADER_LEN + MAP_LEN + 4);
        m.extend([VERSION, OPCODE_MAP, 0, 0]);
        m.extend(self.lifetime.to_be_bytes());
        m.extend(self.client.to_ipv6_mapped().octets());
        m.extend(self.nonce);
        m.extend([PROTOCOL_TCP, 0, 0, 0]);
        m.extend(self.internal_port.to_be_bytes());
        m.extend(self.external_port.to_be_bytes());
        // No preference for the external address: the IPv4-mapped all-zeros address (§11.1).
        m.extend(Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets());
        if self.lifetime > 0 {
            m.extend([OPTION_PREFER_FAILURE, 0, 0, 0]);
        }
        m
    }
}

/// A server's answer to a MAP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Map(MapResponse),
    /// The answer to an ANNOUNCE: the result and the server's epoch.
    Announce {
        result: u8,
        epoch: u32,
    },
    /// A NAT-PMP server that knows no PCP (it answered in NAT-PMP's version 0, RFC 6887 §9).
    NatPmpOnly,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapResponse {
    pub result: u8,
    /// Seconds granted (on success) or how long the error is likely to last.
    pub lifetime: u32,
    /// The server's epoch (seconds since its mappings began).
    pub epoch: u32,
    pub nonce: [u8; 12],
    pub internal_port: u16,
    pub external_port: u16,
    pub external_address: Ipv4Addr,
}

/// An ANNOUNCE request (§14.1): the server answers with its epoch, which tells whether it restarted
/// (and lost our mappings) since its last answer.
pub fn announce_request(client: Ipv4Addr) -> Vec<u8> {
    let mut m = vec![VERSION, OPCODE_ANNOUNCE, 0, 0, 0, 0, 0, 0];
    m.extend(client.to_ipv6_mapped().octets());
    m
}

/// Decodes what came back from the server's port; anything else than a PCP MAP response for TCP over
/// IPv4 (or NAT-PMP's version answer) is an error naming what is wrong.
pub fn decode(datagram: &[u8]) -> Result<Answer, String> {
    if datagram.len() >= 2 && datagram[0] == 0 && datagram[1] & RESPONSE != 0 {
        return Ok(Answer::NatPmpOnly);
    }
    if datagram.len() < HEADER_LEN || datagram.len() > MAX_LEN || datagram.len() % 4 != 0 {
        return Err(format!("a PCP answer of {} bytes", datagram.len()));
    }
    let (version, op) = (datagram[0], datagram[1]);
    if version != VERSION {
        return Err(format!("PCP version {version}"));
    }
    let u32_at = |i: usize| u32::from_be_bytes(datagram[i..i + 4].try_into().unwrap());
    if op == RESPONSE | OPCODE_ANNOUNCE {
        return Ok(Answer::Announce {
            result: datagram[3],
            epoch: u32_at(8),
        });
    }
    if op != RESPONSE | OPCODE_MAP {
        return Err(format!("not a MAP response (opcode byte {op:#04x})"));
    }
    if datagram.len() < HEADER_LEN + MAP_LEN {
        return Err(format!("a MAP answer of {} bytes", datagram.len()));
    }
    let u16_at = |i: usize| u16::from_be_bytes([datagram[i], datagram[i + 1]]);
    let body = HEADER_LEN;
    if datagram[body + 12] != PROTOCOL_TCP {
        return Err(format!("protocol {}", datagram[body + 12]));
    }
    let address: [u8; 16] = datagram[body + 20..body + 36].try_into().unwrap();
    let external_address = Ipv6Addr::from(address)
        .to_ipv4_mapped()
        .ok_or("an external address that is not IPv4")?;
    Ok(Answer::Map(MapResponse {
        result: datagram[3],
        lifetime: u32_at(4),
        epoch: u32_at(8),
        nonce: datagram[body..body + 12].try_into().unwrap(),
        internal_port: u16_at(body + 16),
        external_port: u16_at(body + 18),
        external_address,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lifetime: u32) -> MapRequest {
        MapRequest {
            nonce: *b"0123456789ab",
            client: Ipv4Addr::new(192, 168, 0, 2),
            internal_port: 20570,
            external_port: 20571,
            lifetime,
        }
    }

    /// What a server answers: the request's body with the header of a response.
    fn answer(result: u8, lifetime: u32, external: Ipv4Addr) -> Vec<u8> {
        let mut m = request(lifetime).encode();
        m.truncate(HEADER_LEN + MAP_LEN);
        m[1] = RESPONSE | OPCODE_MAP;
        m[3] = result;
        m[8..12].copy_from_slice(&77u32.to_be_bytes());
        m[12..24].fill(0);
        m[HEADER_LEN + 20..].copy_from_slice(&external.to_ipv6_mapped().octets());
        m
    }

    #[test]
    fn a_map_request_is_laid_out_as_rfc_6887_says() {
        let m = request(3600).encode();
        assert_eq!(m.len(), 24 + 36 + 4);
        assert_eq!(&m[..4], &[2, 1, 0, 0]);
        assert_eq!(&m[4..8], &3600u32.to_be_bytes());
        assert_eq!(
            &m[8..24],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 0, 2]
        );
        assert_eq!(&m[24..36], b"0123456789ab");
        assert_eq!(&m[36..40], &[6, 0, 0, 0]);
        assert_eq!(&m[40..44], &[0x50, 0x5a, 0x50, 0x5b]);
        assert_eq!(
            &m[44..60],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]
        );
        assert_eq!(&m[60..], &[2, 0, 0, 0], "PREFER_FAILURE, no data");
        let delete = request(0).encode();
        assert_eq!(delete.len(), 60, "a deletion carries no option");
        assert_eq!(&delete[4..8], &[0, 0, 0, 0]);
    }

    #[test]
    fn an_answer_names_the_external_address_port_and_epoch() {
        let external = Ipv4Addr::new(203, 0, 113, 1);
        let Answer::Map(a) = decode(&answer(SUCCESS, 1800, external)).unwrap() else {
            panic!("a MAP answer");
        };
        assert_eq!(
            (a.result, a.lifetime, a.epoch),
            (SUCCESS, 1800, 77),
            "{a:?}"
        );
        assert_eq!((a.internal_port, a.external_port), (20570, 20571));
        assert_eq!(a.external_address, external);
        assert_eq!(&a.nonce, b"0123456789ab");
        let refused = decode(&answer(CANNOT_PROVIDE_EXTERNAL, 30, external)).unwrap();
        assert!(matches!(refused, Answer::Map(a) if a.result == 11));
        assert_eq!(result_name(11), "CANNOT_PROVIDE_EXTERNAL");
        assert_eq!(result_name(200), "unknown");
    }

    #[test]
    fn an_announce_asks_for_the_epoch() {
        let m = announce_request(Ipv4Addr::new(192, 168, 0, 2));
        assert_eq!(m.len(), 24);
        assert_eq!(&m[..8], &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&m[20..], &[192, 168, 0, 2]);
        let mut answer = vec![2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x2c];
        answer.extend([0; 12]);
        assert_eq!(
            decode(&answer),
            Ok(Answer::Announce {
                result: 0,
                epoch: 300
            })
        );
        assert!(decode(&answer[..20]).is_err(), "cut short");
    }

    #[test]
    fn a_nat_pmp_server_is_told_apart_and_garbage_is_an_error() {
        // NAT-PMP's answer to a version it does not know: version 0, opcode 128 + 1, result 1.
        assert_eq!(
            decode(&[0, 129, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0]),
            Ok(Answer::NatPmpOnly)
        );
        let good = answer(SUCCESS, 1800, Ipv4Addr::new(203, 0, 113, 1));
        assert!(decode(&good[..59]).is_err(), "short");
        assert!(
            decode(&[good.clone(), vec![0; 2]].concat()).is_err(),
            "not a multiple of 4"
        );
        assert!(decode(&vec![0u8; 1104]).is_err(), "too long");
        let mut v = good.clone();
        v[0] = 1;
        assert!(decode(&v).unwrap_err().contains("version"));
        let mut v = good.clone();
        v[1] = OPCODE_MAP;
        assert!(
            decode(&v).unwrap_err().contains("MAP response"),
            "a request"
        );
        let mut v = good.clone();
        v[HEADER_LEN + 12] = 17;
        assert!(decode(&v).unwrap_err().contains("protocol"));
        let mut v = good;
        v[HEADER_LEN + 20] = 0x20;
        assert!(decode(&v).unwrap_err().contains("IPv4"));
    }
}
