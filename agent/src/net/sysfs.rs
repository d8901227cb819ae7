//! A network device's state and counters as sysfs tells them (read-only).

/// The WAN link as the WANCommonInterfaceConfig service reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    pub up: bool,
    /// Bits per second, 0 when unknown.
    pub speed_bps: u64,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub rx_packets: u64,
}

/// The WAN link as sysfs tells it: state, speed and counters.
pub fn link(device: &str) -> Link {
    let dir = std::path::Path::new("/sys/class/net").join(device);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let num = |f: &str| read(f).trim().parse::<u64>().unwrap_or(0);
    let state = read("operstate");
    let up = match state.trim() {
        "up" => true,
        // PPP and tunnel devices report "unknown"; their carrier tells.
        "unknown" => read("carrier").trim() == "1",
        _ => false,
    };
    let speed = read("speed").trim().parse::<i64>().unwrap_or(0).max(0) as u64;
    Link {
        up,
        speed_bps: speed * 1_000_000,
        tx_bytes: num("statistics/tx_bytes"),
        rx_bytes: num("statistics/rx_bytes"),
        tx_packets: num("statistics/tx_packets"),
        rx_packets: num("statistics/rx_packets"),
    }
}

/// What only sysfs tells of the LAN's switching: which bridge ports are Wi-Fi, and the DSA tagging
/// protocol of each switch's conduit (it names the switch driver). A link that was already read
/// (`before`: the same index, name and place) keeps what was read then.
pub fn switching(links: &mut [super::Link], before: &[super::Link]) {
    switching_in(std::path::Path::new("/"), links, before)
}

/// `switching` with sysfs under `root` (a router's tree copied into a test).
pub fn switching_in(root: &std::path::Path, links: &mut [super::Link], before: &[super::Link]) {
    let conduits: Vec<u32> = (links.iter())
        .filter(|l| l.port.switch_id.is_some())
        .filter_map(|l| l.port.parent)
        .collect();
    let dir = |name: &str| root.join("sys/class/net").join(name);
    for l in links.iter_mut() {
        let known = before.iter().find(|b| {
            b.index == l.index
                && b.name == l.name
                && b.port.bridge == l.port.bridge
                && (b.port.tagging.is_some() == conduits.contains(&l.index))
        });
        if let Some(b) = known {
            l.port.wireless = b.port.wireless;
            l.port.tagging = b.port.tagging.clone();
            continue;
        }
        if l.port.bridge.is_some() {
            let d = dir(&l.name);
            l.port.wireless = d.join("wireless").exists() || d.join("phy80211").exists();
        }
        if conduits.contains(&l.index) {
            let tagging = std::fs::read_to_string(dir(&l.name).join("dsa/tagging"));
            l.port.tagging = tagging.ok().map(|t| t.trim().to_string());
        }
    }
}
