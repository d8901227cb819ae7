//! NAT-PMP (RFC 6886) requests and answers, as bytes: no socket here. The older protocol PCP grew
//! from, still what many gateways speak; same server port (5351). Its external address comes from its
//! own request; a TCP mapping is renewed by asking again and deleted with lifetime 0.

use std::net::Ipv4Addr;

const VERSION: u8 = 0;
const OP_ADDRESS: u8 = 0;
const OP_MAP_TCP: u8 = 2;
/// Added to the opcode in an answer.
const ANSWER: u8 = 128;

pub const SUCCESS: u16 = 0;

/// The name RFC 6886 §3.5 gives a result code, for logs and the verdict.
pub fn result_name(code: u16) -> &'static str {
    match code {
        0 => "Success",
        1 => "Unsupported Version",
        2 => "Not Authorized/Refused",
        3 => "Network Failure",
        4 => "Out of resources",
        5 => "Unsupported opcode",
        _ => "unknown",
    }
}

/// "What is your external address?"
pub fn address_request() -> [u8; 2] {
    [VERSION, OP_ADDRESS]
}

/// A TCP mapping of `external_port` (a suggestion: the server may give another) to the router's
/// `internal_port`, for `lifetime` seconds; lifetime 0 with external port 0 deletes it.
pub fn map_request(internal_port: u16, external_port: u16, lifetime: u32) -> [u8; 12] {
    let mut m = [0u8; 12];
    m[1] = OP_MAP_TCP;
    m[4..6].copy_from_slice(&internal_port.to_be_bytes());
    m[6..8].copy_from_slice(&external_port.to_be_bytes());
    m[8..12].copy_from_slice(&lifetime.to_be_bytes());
    m
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Address {
        result: u16,
        epoch: u32,
        address: Ipv4Addr,
    },
    Map {
        result: u16,
        epoch: u32,
        internal_port: u16,
        external_port: u16,
        lifetime: u32,
    },
}

/// Decodes an answer; anything else (a request, another opcode, a short datagram) is an error.
pub fn decode(d: &[u8]) -> Result<Answer, String> {
    if d.len() < 8 {
        return Err(format!("a NAT-PMP answer of {} bytes", d.len()));
    }
    if d[0] != VERSION {
        return Err(format!("NAT-PMP version {}", d[0]));
    }
    let u32_at = |i: usize| u32::from_be_bytes(d[i..i + 4].try_into().unwrap());
    let u16_at = |i: usize| u16::from_be_bytes([d[i], d[i + 1]]);
    let (result, epoch) = (u16_at(2), u32_at(4));
    match d[1] {
        op if op == ANSWER + OP_ADDRESS && d.len() >= 12 => Ok(Answer::Address {
            result,
            epoch,
            address: Ipv4Addr::from(u32_at(8)),
        }),
        op if op == ANSWER + OP_MAP_TCP && d.len() >= 16 => Ok(Answer::Map {
            result,
            epoch,
            internal_port: u16_at(8),
            external_port: u16_at(10),
            lifetime: u32_at(12),
        }),
        op => Err(format!("NAT-PMP opcode {op} in {} bytes", d.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_laid_out_as_rfc_6886_says() {
        assert_eq!(address_request(), [0, 0]);
        assert_eq!(
            map_request(20570, 20571, 3600),
            [0, 2, 0, 0, 0x50, 0x5a, 0x50, 0x5b, 0, 0, 0x0e, 0x10]
        );
        assert_eq!(map_request(20570, 0, 0)[6..], [0; 6], "a deletion");
    }

    #[test]
    fn answers_name_address_port_lifetime_and_epoch() {
        let address = [0, 128, 0, 0, 0, 0, 0, 42, 203, 0, 113, 1];
        assert_eq!(
            decode(&address),
            Ok(Answer::Address {
                result: SUCCESS,
                epoch: 42,
                address: Ipv4Addr::new(203, 0, 113, 1)
            })
        );
        let map = [
            0, 130, 0, 0, 0, 0, 0, 43, 0x50, 0x5a, 0x50, 0x5b, 0, 0, 0x0e, 0x10,
        ];
        assert_eq!(
            decode(&map),
            Ok(Answer::Map {
                result: SUCCESS,
                epoch: 43,
                internal_port: 20570,
                external_port: 20571,
                lifetime: 3600
            })
        );
        let refused = [0, 130, 0, 2, 0, 0, 0, 43, 0x50, 0x5a, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            decode(&refused),
            Ok(Answer::Map { result: 2, .. })
        ));
        assert_eq!(result_name(2), "Not Authorized/Refused");
    }

    #[test]
    fn anything_else_is_an_error() {
        assert!(decode(&[0, 128, 0, 0]).is_err(), "short");
        assert!(
            decode(&[0, 128, 0, 0, 0, 0, 0, 1]).is_err(),
            "an address answer without address"
        );
        assert!(
            decode(&[0, 130, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]).is_err(),
            "a map answer cut short"
        );
        assert!(
            decode(&map_request(1, 1, 1)).is_err(),
            "a request is no answer"
        );
        assert!(
            decode(&[2, 129, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err(),
            "PCP"
        );
        assert!(
            decode(&[0, 129, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err(),
            "UDP map"
        );
    }
}
