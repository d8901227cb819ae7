//! Issue 15, first step: set and map elements changed over netlink (`firewall::elements`), no nft
//! process, against the real kernel in the lab router: committed whole, counted by the sets' counter
//! template, and refused whole when one message is wrong.

use nix::errno::Errno;
use nix::sys::socket::SockProtocol;
use std::time::{Duration, Instant};
use wilife_agent::config::PortRange;
use wilife_agent::firewall::elements::{self, port, port_host, Batch};
use wilife_agent::firewall::render::upnp;
use wilife_agent::firewall::{Forward, Origin};
use wilife_agent::netlink::Kept;
use wilife_lab::lab::*;

/// The element sets of the mapping design: external port -> host, external port -> internal port,
/// and the granted `port . host` pairs, counted per element.
const SETS: &str = "table inet wilife {\n map upnp_addr { type inet_service : ipv4_addr; counter; }\n map upnp_port { type inet_service : inet_service; }\n set upnp_granted { type inet_service . ipv4_addr; counter; }\n}\n";

/// A socket for one exchange (opened in the namespace of the calling thread).
fn netfilter() -> Kept {
    Kept::new(SockProtocol::NetlinkNetFilter)
}

fn mapping(p: u16) -> Batch {
    let mut b = Batch::new("wilife");
    b.add("upnp_addr", &[(port(p), Some(elements::host(CC_IP)))]);
    b.add("upnp_port", &[(port(p), Some(port(p)))]);
    b.add("upnp_granted", &[(port_host(p, CC_IP), None)]);
    b
}

fn unmapping(p: u16) -> Batch {
    let mut b = Batch::new("wilife");
    b.delete("upnp_addr", &[port(p)]);
    b.delete("upnp_port", &[port(p)]);
    b.delete("upnp_granted", &[port_host(p, CC_IP)]);
    b
}

#[test]
fn elements_are_added_and_removed_in_one_atomic_netlink_transaction() {
    let lab = Lab::new();
    let out = lab.nft_stdin(SETS);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = || {
        String::from_utf8_lossy(&lab.nft(&["list", "table", "inet", "wilife"]).stdout).to_string()
    };

    let took: Duration = lab
        .in_ns(&lab.router, || {
            let t = Instant::now();
            elements::commit(&netfilter(), &mapping(20570)).map(|_| t.elapsed())
        })
        .expect("the kernel commits the mapping");
    println!("one mapping (3 elements) committed in {took:?}");
    let l = listing();
    assert!(
        l.contains(&format!("20570 counter packets 0 bytes 0 : {CC_IP}")),
        "{l}"
    );
    assert!(l.contains("20570 : 20570"), "{l}");
    assert!(
        l.contains(&format!("20570 . {CC_IP} counter packets 0 bytes 0")),
        "{l}"
    );

    // One wrong message (the delete of an element that is not there) refuses the whole batch: the new
    // mapping in front of it is not in force either.
    let refused = lab.in_ns(&lab.router, || {
        let mut b = mapping(20571);
        b.delete("upnp_granted", &[port_host(20999, CC_IP)]);
        elements::commit(&netfilter(), &b)
    });
    assert_eq!(refused, Err(Errno::ENOENT));
    assert!(!listing().contains("20571"), "{}", listing());
    // The same port mapped to another host is refused (EEXIST), and the first mapping stays.
    let clash = lab.in_ns(&lab.router, || {
        let mut b = Batch::new("wilife");
        b.add(
            "upnp_addr",
            &[(port(20570), Some(elements::host(OTHER_IP)))],
        );
        elements::commit(&netfilter(), &b)
    });
    assert_eq!(clash, Err(Errno::EEXIST));
    assert!(listing().contains(&format!("20570 counter packets 0 bytes 0 : {CC_IP}")));

    // The owner's change of a port's target: delete and add of the same keys in one batch.
    let to = |host| Forward {
        external: PortRange {
            first: 20570,
            last: 20570,
        },
        target: host,
        target_port: None,
        origin: Origin::Upnp,
    };
    let retarget = upnp::changes(&[to(CC_IP)], &[to(OTHER_IP)]);
    lab.in_ns(&lab.router, move || {
        elements::commit(&netfilter(), &retarget.batch)
    })
    .expect("the kernel takes a new target in one transaction");
    assert!(
        listing().contains(&format!("20570 counter packets 0 bytes 0 : {OTHER_IP}")),
        "{}",
        listing()
    );
    let back = upnp::changes(&[to(OTHER_IP)], &[to(CC_IP)]);
    lab.in_ns(&lab.router, move || {
        elements::commit(&netfilter(), &back.batch)
    })
    .unwrap();

    let gone = lab
        .in_ns(&lab.router, || {
            elements::commit(&netfilter(), &unmapping(20570))
        })
        .expect("the kernel removes the mapping");
    // Each removed element is echoed with what its counter counted (nothing passed here).
    let echoed: Vec<(&str, Option<u64>)> =
        gone.iter().map(|d| (d.set.as_str(), d.packets)).collect();
    assert_eq!(
        echoed,
        [
            ("upnp_addr", Some(0)),
            ("upnp_port", None),
            ("upnp_granted", Some(0))
        ]
    );
    assert_eq!(upnp::connections_counted(&gone), [(20570, 0)]);
    assert!(!listing().contains("20570"), "{}", listing());
    // No table at all: a clear refusal, not a hang.
    lab.nft(&["delete", "table", "inet", "wilife"]);
    let gone = lab.in_ns(&lab.router, || {
        elements::commit(&netfilter(), &mapping(20570))
    });
    assert_eq!(gone, Err(Errno::ENOENT));
}
