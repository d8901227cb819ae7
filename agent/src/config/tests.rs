use super::*;
use crate::consts;

const GOOD: &str = "\
config agent 'main'
\toption direct_access 'static'
\toption wan_device 'wan0'
\tlist lan_device 'br-lan'
\toption api_port '8780'
\toption api_token_file '/etc/wilife/api_token'
\toption state_dir '/var/run/wilife'
config direct 'direct'
\toption ports '20570-20575'
\toption custom_port ''
config command_center
\toption name 'office-pc'
\toption ip '192.168.1.10'
\toption mac '00:11:22:33:44:55'
config camera
\toption name 'porch'
\toption mac '00:11:22:33:44:66'
";

fn parse_str(text: &str) -> Result<Config, ConfigErrors> {
    parse(text, Path::new("/etc/config/wilife"), &Overrides::default())
}

#[test]
fn init_script_networks_and_presence_options_are_accepted() {
    let text = GOOD.replace(
        "\toption api_port '8780'",
        "\toption api_port '8780'\n\toption wan_network 'wan6'\n\tlist lan_network 'lan'\n\tlist lan_network 'iot_cams'\n\toption presence_timeout '60'\n\toption dhcp_leases '/tmp/dhcp.leases'",
    );
    let c = parse_str(&text).unwrap();
    assert_eq!(c.presence_timeout, 60);
    assert_eq!(c.dhcp_leases, Path::new("/tmp/dhcp.leases"));
}

#[test]
fn good_config_parses_with_defaults() {
    let c = parse_str(GOOD).unwrap();
    assert_eq!(c.direct_access, DirectAccess::Static);
    assert_eq!(c.wan_device.as_deref(), Some("wan0"));
    assert_eq!(c.lan_devices, vec!["br-lan".to_string()]);
    assert_eq!(
        c.direct.ports,
        PortRange {
            first: 20570,
            last: 20575
        }
    );
    assert_eq!(c.direct.custom_port, None);
    assert!(c.direct.reflection);
    assert_eq!(c.connmark, consts::DEFAULT_CONNMARK);
    assert_eq!(
        c.command_centers[0].mac.unwrap().to_string(),
        "00:11:22:33:44:55"
    );
    assert_eq!(c.cameras[0].name, "porch");
    assert!(c.camera_rules.isolation);
    assert_eq!(c.camera_rules.video_port, 22211);
    assert_eq!(c.outbound.smtp_port, 25);
    assert_eq!(c.upnp.port, consts::DEFAULT_UPNP_PORT);
    assert_eq!(c.upnp.max_per_client, 2);
    assert!(c.upnp.same_port && !c.upnp.any_lan_host);
    assert_eq!((c.upnp.max_lease, c.upnp.uuid.clone()), (0, None));
    assert_eq!(c.upstream.mode, UpstreamMode::Auto);
    assert_eq!(
        c.upstream.protocols,
        [
            UpstreamProtocol::Pcp,
            UpstreamProtocol::Natpmp,
            UpstreamProtocol::Upnp
        ]
    );
    assert_eq!(c.upstream.lease, consts::DEFAULT_UPSTREAM_LEASE_SECS);
    let (cc, ip) = c.static_target().unwrap();
    assert_eq!(
        (cc.name.as_str(), ip),
        ("office-pc", "192.168.1.10".parse().unwrap())
    );
}

#[test]
fn the_upstream_section_sets_mode_protocol_order_and_lease() {
    let c = parse_str(&format!(
        "{GOOD}config upstream 'upstream'\n\toption mode 'off'\n\tlist protocol 'upnp'\n\tlist protocol 'pcp'\n\toption lease '7200'\n"
    ))
    .unwrap();
    assert_eq!(c.upstream.mode, UpstreamMode::Off);
    assert_eq!(
        c.upstream.protocols,
        [UpstreamProtocol::Upnp, UpstreamProtocol::Pcp]
    );
    assert_eq!(c.upstream.lease, 7200);
    let enabled = parse_str(&format!(
        "{GOOD}config upstream 'upstream'\n\toption mode 'enabled'\n"
    ))
    .unwrap();
    assert_eq!(enabled.upstream.mode, UpstreamMode::Enabled);
}

#[test]
fn the_shipped_example_config_is_valid() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../openwrt-package/wilife-agent/files/wilife.config"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let o = Overrides {
        wan_device: Some("eth1".into()),
        lan_devices: vec!["br-lan".into()],
    };
    let c = parse(&text, Path::new(path), &o).unwrap();
    assert_eq!(c.direct_access, DirectAccess::Upnp);
    assert!(c.camera_rules.isolation);
}

#[test]
fn overrides_replace_devices() {
    let o = Overrides {
        wan_device: Some("eth9".into()),
        lan_devices: vec!["lan1".into(), "lan2".into()],
    };
    let c = parse(GOOD, Path::new("x"), &o).unwrap();
    assert_eq!(c.wan_device.as_deref(), Some("eth9"));
    assert_eq!(c.lan_devices, vec!["lan1", "lan2"]);
}

/// Replaces the first line containing `from` (a whole line of GOOD) by `to`.
fn with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "fixture lacks {from:?}");
    GOOD.replacen(from, to, 1)
}

/// (case, text, expected line, section, option, words the message must contain)
type Case = (
    &'static str,
    String,
    Option<usize>,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

#[test]
fn bad_configs_get_precise_errors() {
    // (case, text, expected line, expected section, expected option, words the message must contain)
    let cases: Vec<Case> = vec![
        (
            "unknown option",
            with("\toption api_port '8780'", "\toption api_prot '8780'"),
            Some(5),
            Some("agent 'main'"),
            Some("api_prot"),
            "unknown option; valid options here: enabled, direct_access",
        ),
        (
            "bad port",
            with("\toption api_port '8780'", "\toption api_port '70000'"),
            Some(5),
            Some("agent 'main'"),
            Some("api_port"),
            "'70000' is not a port: use a number from 1 to 65535",
        ),
        (
            "port zero",
            with("\toption api_port '8780'", "\toption api_port '0'"),
            Some(5),
            Some("agent 'main'"),
            Some("api_port"),
            "is not a port",
        ),
        (
            "bad network name",
            with(
                "\toption api_port '8780'",
                "\toption api_port '8780'\n\tlist lan_network 'lan;reboot'",
            ),
            Some(6),
            Some("agent 'main'"),
            Some("lan_network"),
            "'lan;reboot' is not a network name",
        ),
        (
            "bad presence timeout",
            with(
                "\toption api_port '8780'",
                "\toption api_port '8780'\n\toption presence_timeout '0'",
            ),
            Some(6),
            Some("agent 'main'"),
            Some("presence_timeout"),
            "is not a number of seconds between 1 and 86400",
        ),
        (
            "range reversed",
            with(
                "\toption ports '20570-20575'",
                "\toption ports '20575-20570'",
            ),
            Some(9),
            Some("direct 'direct'"),
            Some("ports"),
            "'20575-20570' is reversed",
        ),
        (
            "range garbage",
            with(
                "\toption ports '20570-20575'",
                "\toption ports '20570..20575'",
            ),
            Some(9),
            Some("direct 'direct'"),
            Some("ports"),
            "is not a port range: use FIRST-LAST",
        ),
        (
            "bad IP",
            with("\toption ip '192.168.1.10'", "\toption ip '192.168.1.300'"),
            Some(13),
            Some("command_center #1"),
            Some("ip"),
            "'192.168.1.300' is not an IPv4 address",
        ),
        (
            "broadcast IP",
            with(
                "\toption ip '192.168.1.10'",
                "\toption ip '255.255.255.255'",
            ),
            Some(13),
            Some("command_center #1"),
            Some("ip"),
            "is not a host address",
        ),
        (
            "bad MAC",
            with(
                "\toption mac '00:11:22:33:44:55'",
                "\toption mac '00:11:22:33:44'",
            ),
            Some(14),
            Some("command_center #1"),
            Some("mac"),
            "is not a MAC address",
        ),
        (
            "multicast MAC",
            with(
                "\toption mac '00:11:22:33:44:55'",
                "\toption mac '01:00:5e:00:00:01'",
            ),
            Some(14),
            Some("command_center #1"),
            Some("mac"),
            "is not a unicast MAC",
        ),
        (
            "unterminated quote",
            with("\toption name 'porch'", "\toption name 'porch"),
            Some(17),
            None,
            None,
            "unterminated quote",
        ),
        (
            "duplicate section",
            format!("{GOOD}config agent 'main'\n"),
            Some(18),
            Some("agent 'main'"),
            None,
            "duplicate section (first on line 1)",
        ),
        (
            "second direct section",
            format!("{GOOD}config direct 'other'\n"),
            Some(18),
            Some("direct 'other'"),
            None,
            "only one `config direct`",
        ),
        (
            "unknown section type",
            format!("{GOOD}config cameraa\n"),
            Some(18),
            Some("config cameraa"),
            None,
            "unknown section type; valid types: agent, direct",
        ),
        (
            "bad mode",
            with(
                "\toption direct_access 'static'",
                "\toption direct_access 'auto'",
            ),
            Some(2),
            Some("agent 'main'"),
            Some("direct_access"),
            "use upnp, static or off",
        ),
        (
            "option twice",
            with(
                "\toption api_port '8780'",
                "\toption api_port '8780'\n\toption api_port '8781'",
            ),
            Some(6),
            Some("agent 'main'"),
            Some("api_port"),
            "given twice (first on line 5)",
        ),
        (
            "list for a single option",
            with("\toption api_port '8780'", "\tlist api_port '8780'"),
            Some(5),
            Some("agent 'main'"),
            Some("api_port"),
            "takes one value",
        ),
        (
            "wan network is a lan network",
            with(
                "\toption api_port '8780'",
                "\toption api_port '8780'\n\toption wan_network 'lan'",
            ),
            Some(6),
            Some("agent 'main'"),
            Some("wan_network"),
            "is a LAN network too",
        ),
        (
            "bad device name",
            with("\toption wan_device 'wan0'", "\toption wan_device 'a/b'"),
            Some(3),
            Some("agent 'main'"),
            Some("wan_device"),
            "is not a network device name",
        ),
        (
            "device too long",
            with(
                "\toption wan_device 'wan0'",
                "\toption wan_device 'averyveryverylongname'",
            ),
            Some(3),
            Some("agent 'main'"),
            Some("wan_device"),
            "1-15 characters",
        ),
        (
            "wan is lan",
            with("\toption wan_device 'wan0'", "\toption wan_device 'br-lan'"),
            Some(4),
            Some("agent 'main'"),
            Some("lan_device"),
            "is the WAN device too",
        ),
        (
            "custom port inside range",
            with("\toption custom_port ''", "\toption custom_port '20572'"),
            Some(10),
            Some("direct 'direct'"),
            Some("custom_port"),
            "is inside ports 20570-20575",
        ),
        (
            "token in the file read-only users read",
            with(
                "\toption api_token_file '/etc/wilife/api_token'",
                "\toption api_token 'secret-secret-secret'",
            ),
            Some(6),
            Some("agent 'main'"),
            Some("api_token"),
            "is no longer read from this file, which read-only LuCI users can read: put the token in \
             /etc/wilife/api_token (mode 0600) and delete this option",
        ),
        (
            "relative state dir",
            with(
                "\toption state_dir '/var/run/wilife'",
                "\toption state_dir 'run/wilife'",
            ),
            Some(7),
            Some("agent 'main'"),
            Some("state_dir"),
            "is not an absolute path",
        ),
        (
            "connmark two bits",
            GOOD.replace(
                "\toption state_dir '/var/run/wilife'",
                "\toption state_dir '/var/run/wilife'\n\toption connmark '0x3'",
            ),
            Some(8),
            Some("agent 'main'"),
            Some("connmark"),
            "is not a single bit",
        ),
        (
            "command center without identity",
            with(
                "\toption ip '192.168.1.10'\n\toption mac '00:11:22:33:44:55'\n",
                "",
            ),
            Some(11),
            Some("command_center #1"),
            Some("ip"),
            "identify the Command Center PC by 'ip' and/or 'mac'",
        ),
        (
            "camera without mac",
            with("\toption mac '00:11:22:33:44:66'\n", ""),
            Some(15),
            Some("camera #1"),
            Some("mac"),
            "cameras are identified by MAC",
        ),
        (
            "camera has the cc's mac",
            with(
                "\toption mac '00:11:22:33:44:66'",
                "\toption mac '00:11:22:33:44:55'",
            ),
            Some(17),
            Some("camera #1"),
            Some("mac"),
            "is the MAC of command_center 'office-pc'",
        ),
        (
            "static without ip",
            with("\toption ip '192.168.1.10'\n", ""),
            Some(2),
            Some("agent 'main'"),
            Some("direct_access"),
            "needs a command_center with an 'ip'",
        ),
        (
            "unknown static host",
            with("\toption custom_port ''", "\toption static_host 'den-pc'"),
            Some(10),
            Some("direct 'direct'"),
            Some("static_host"),
            "'den-pc' is not a command_center; known: office-pc",
        ),
        (
            "bad boolean",
            with("\toption custom_port ''", "\toption reflection 'maybe'"),
            Some(10),
            Some("direct 'direct'"),
            Some("reflection"),
            "is not a boolean",
        ),
        (
            "option before config",
            format!("option x y\n{GOOD}"),
            Some(1),
            None,
            None,
            "before any `config` section",
        ),
        (
            "duplicate cc ip",
            format!("{GOOD}config command_center\n\toption ip '192.168.1.10'\n"),
            Some(19),
            Some("command_center #2"),
            Some("ip"),
            "belongs to command_center 'office-pc' already",
        ),
        (
            "upnp port equals api port",
            format!("{GOOD}config upnp 'upnp'\n\toption port '8780'\n"),
            Some(19),
            Some("upnp 'upnp'"),
            Some("port"),
            "is the API port too",
        ),
        (
            "upnp cap zero",
            format!("{GOOD}config upnp 'upnp'\n\toption max_per_client '0'\n"),
            Some(19),
            Some("upnp 'upnp'"),
            Some("max_per_client"),
            "is not a mapping count: use a number from 1 to 64",
        ),
        (
            "upnp bad uuid",
            format!("{GOOD}config upnp 'upnp'\n\toption uuid 'not-a-uuid'\n"),
            Some(19),
            Some("upnp 'upnp'"),
            Some("uuid"),
            "is not a UUID",
        ),
        (
            "upstream mode",
            format!("{GOOD}config upstream 'upstream'\n\toption mode 'on'\n"),
            Some(19),
            Some("upstream 'upstream'"),
            Some("mode"),
            "'on' is not a mode: use auto, enabled or off",
        ),
        (
            "upstream protocol unknown",
            format!("{GOOD}config upstream 'upstream'\n\tlist protocol 'pcp'\n\tlist protocol 'igd'\n"),
            Some(20),
            Some("upstream 'upstream'"),
            Some("protocol"),
            "'igd' is not a protocol: use pcp, natpmp or upnp",
        ),
        (
            "upstream protocol twice",
            format!("{GOOD}config upstream 'upstream'\n\tlist protocol 'upnp'\n\tlist protocol 'upnp'\n"),
            Some(20),
            Some("upstream 'upstream'"),
            Some("protocol"),
            "'upnp' is named twice",
        ),
        (
            "upstream lease too short",
            format!("{GOOD}config upstream 'upstream'\n\toption lease '60'\n"),
            Some(19),
            Some("upstream 'upstream'"),
            Some("lease"),
            "is not a lease in seconds: use a number from 120 to 86400",
        ),
        (
            "upstream twice",
            format!("{GOOD}config upstream\nconfig upstream\n"),
            Some(19),
            Some("upstream #1"),
            None,
            "only one `config upstream` is allowed",
        ),
        (
            "upnp notify too often",
            format!("{GOOD}config upnp 'upnp'\n\toption notify_interval '5'\n"),
            Some(19),
            Some("upnp 'upnp'"),
            Some("notify_interval"),
            "from 30 to 86400",
        ),
    ];
    assert!(cases.len() >= 15);
    for (case, text, line, section, option, needle) in cases {
        let errors = parse_str(&text).expect_err(case);
        // One mistake, one error: nothing follows from it.
        assert_eq!(errors.len(), 1, "{case}: {errors}");
        let e = &errors[0];
        assert_eq!(e.file, "/etc/config/wilife", "{case}");
        assert_eq!(e.line, line, "{case}: {e}");
        assert_eq!(e.section.as_deref(), section, "{case}: {e}");
        assert_eq!(e.option.as_deref(), option, "{case}: {e}");
        assert!(e.message.contains(needle), "{case}: {e}");
        assert!(
            e.to_string().starts_with("/etc/config/wilife:"),
            "{case}: {e}"
        );
    }
}

#[test]
fn error_display_is_one_readable_line() {
    let e = parse_str(&with("\toption api_port '8780'", "\toption api_port 'x'")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/config/wilife:5: agent 'main', option 'api_port': 'x' is not a port: use a number from 1 to 65535"
    );
}

#[test]
fn scalar_parsers() {
    assert_eq!(parse_bit("0x10000000"), Ok(0x1000_0000));
    assert_eq!(parse_bit("256"), Ok(256));
    assert!(parse_bit("0").is_err());
    assert_eq!(parse_range("80"), Ok(PortRange::single(80)));
    assert!(parse_port("+80").is_err());
    assert!(parse_port("080a").is_err());
    assert_eq!(
        parse_mac("AA-bb-CC-dd-EE-f0").unwrap().to_string(),
        "aa:bb:cc:dd:ee:f0"
    );
    assert!(
        parse_host_ip("010.1.1.1").is_err(),
        "octal-looking addresses are refused"
    );
    assert_eq!(parse_bool("on"), Ok(true));
}

#[test]
fn missing_file_is_a_clear_error() {
    let e = load(Path::new("/nonexistent/wilife"), &Overrides::default()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/wilife: cannot read the file:"),
        "{e}"
    );
}

/// The file the package installs, as shipped: devices are left to netifd, and no token is written.
#[test]
fn the_shipped_config_is_valid_and_leaves_devices_to_netifd() {
    let shipped = include_str!("../../../openwrt-package/wilife-agent/files/wilife.config");
    let c = parse_str(shipped).unwrap();
    assert_eq!(c.wan_device, None);
    assert!(c.lan_devices.is_empty());
    assert_eq!(c.networks.wan_network, "wan");
    assert_eq!(c.networks.lan_networks, vec!["lan".to_string()]);
    assert!(c.networks.need_resolving());
    assert_eq!(c.api_token, None);
    // An older shipped file said `option wan_device ''`: still no pin.
    let old = shipped.replace(
        "\toption direct_access 'upnp'",
        "\toption direct_access 'upnp'\n\toption wan_device ''\n\toption api_token ''",
    );
    assert_eq!(parse_str(&old).unwrap().wan_device, None);
}

#[test]
fn devices_follow_the_networks_unless_pinned() {
    let netifd = |n: &str| match n {
        "wan" => Some("pppoe-wan".to_string()),
        "lan" => Some("br-lan".to_string()),
        "iot" => Some("br-iot".to_string()),
        "same" => Some("pppoe-wan".to_string()),
        _ => None,
    };
    let text = "config agent 'main'\n\tlist lan_network 'lan'\n\tlist lan_network 'iot'\n\tlist lan_network 'lan'\n\tlist lan_network 'gone'\n";
    let mut c = parse_str(text).unwrap();
    c.resolve_devices(netifd);
    assert_eq!(c.wan_device.as_deref(), Some("pppoe-wan"));
    assert_eq!(c.lan_devices, vec!["br-lan", "br-iot"]);
    // WAN down and unknown: no device, the LAN side stays.
    c.resolve_devices(|n| netifd(n).filter(|_| n != "wan"));
    assert_eq!(c.wan_device, None);
    assert_eq!(c.lan_devices, vec!["br-lan", "br-iot"]);
    // A LAN network on the WAN's device is not LAN.
    let mut s =
        parse_str("config agent 'main'\n\tlist lan_network 'lan'\n\tlist lan_network 'same'\n")
            .unwrap();
    s.resolve_devices(netifd);
    assert_eq!(s.lan_devices, vec!["br-lan"]);
    // Pinned devices are kept whatever netifd says.
    let mut p =
        parse_str("config agent 'main'\n\toption wan_device 'eth1'\n\tlist lan_device 'lan1'\n")
            .unwrap();
    assert!(!p.networks.need_resolving());
    p.resolve_devices(netifd);
    assert_eq!(p.wan_device.as_deref(), Some("eth1"));
    assert_eq!(p.lan_devices, vec!["lan1"]);
}

#[test]
fn camera_networks_have_devices_of_their_own() {
    let netifd = |n: &str| match n {
        "wan" => Some("eth1".to_string()),
        "lan" => Some("br-lan".to_string()),
        "wilifecam" => Some("br-wilifecam".to_string()),
        "onlan" => Some("br-lan".to_string()),
        _ => None,
    };
    let text =
        "config agent 'main'\n\tlist camera_network 'wilifecam'\n\tlist camera_network 'onlan'\n";
    let mut c = parse_str(text).unwrap();
    c.resolve_devices(netifd);
    // A camera network on a LAN device is no camera network.
    assert_eq!(c.camera_devices, vec!["br-wilifecam"]);
    // Pinned, netifd is asked for the others only.
    let pinned = "config agent 'main'\n\toption wan_device 'eth1'\n\tlist lan_device 'br-lan'\n\tlist camera_device 'br-cam'\n";
    let mut p = parse_str(pinned).unwrap();
    assert!(!p.networks.need_resolving());
    p.resolve_devices(netifd);
    assert_eq!(p.camera_devices, vec!["br-cam"]);
    // The same network or device on both sides is refused.
    let both = "config agent 'main'\n\tlist lan_network 'lan'\n\tlist camera_network 'lan'\n";
    let e = parse_str(both).unwrap_err().to_string();
    assert!(e.contains("camera_network"), "{e}");
    let both = "config agent 'main'\n\tlist lan_device 'br-lan'\n\tlist camera_device 'br-lan'\n";
    let e = parse_str(both).unwrap_err().to_string();
    assert!(e.contains("camera_device"), "{e}");
}

#[test]
fn every_error_of_a_file_is_reported_in_file_order() {
    let text = "\
config agent 'main'
\toption api_port 'x'
\toption colour 'blue'
\toption connmark '3'
config direct 'direct'
\toption reflection 'maybe'
config command_center
\toption name 'pc'
config camera
\toption mac 'nope'
config upnp 'upnp'
\toption max_lease '-1'
config gadget
";
    let errors = parse_str(text).unwrap_err();
    let found: Vec<(Option<usize>, Option<&str>)> = errors
        .iter()
        .map(|e| (e.line, e.option.as_deref()))
        .collect();
    assert_eq!(
        found,
        [
            (Some(2), Some("api_port")),
            (Some(3), Some("colour")),
            (Some(4), Some("connmark")),
            (Some(6), Some("reflection")),
            (Some(7), Some("ip")),
            (Some(10), Some("mac")),
            (Some(12), Some("max_lease")),
            (Some(13), None),
        ],
        "{errors}"
    );
    // Printed one per line, each with its file and line, as a compiler does.
    let printed = errors.to_string();
    assert_eq!(printed.lines().count(), 8);
    assert!(printed
        .lines()
        .all(|l| l.starts_with("/etc/config/wilife:")));
}

#[test]
fn a_duplicate_section_is_said_once() {
    // Two sections named 'yard' (a copy): one error, not a second one for the MAC both give.
    let text = format!(
        "{GOOD}config camera 'yard'\n\toption mac '00:11:22:33:44:67'\nconfig camera 'yard'\n\toption mac '00:11:22:33:44:67'\n"
    );
    let errors = parse_str(&text).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors}");
    assert_eq!(errors[0].line, Some(20), "{errors}");
    assert!(
        errors[0]
            .message
            .contains("duplicate section (first on line 18)"),
        "{errors}"
    );
}

/// docs/CONFIGURATION.md documents exactly the sections and options the code accepts: a heading
/// `### config TYPE` per section type, then a table with one row per option, its name first.
#[test]
fn the_configuration_doc_lists_exactly_the_options_the_code_accepts() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONFIGURATION.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut documented: Vec<(String, Vec<String>)> = Vec::new();
    for line in doc.lines() {
        if let Some(kind) = line.strip_prefix("### config ") {
            documented.push((kind.trim().to_string(), Vec::new()));
        } else if line.starts_with("## ") || line.starts_with("### ") {
            documented.push((String::new(), Vec::new()));
        } else if let (Some((_, options)), Some(row)) =
            (documented.last_mut(), line.strip_prefix("| `"))
        {
            options.push(row.split('`').next().unwrap().to_string());
        }
    }
    documented.retain(|(kind, _)| !kind.is_empty());
    let code: Vec<(String, Vec<String>)> = (validate::SECTION_TYPES.iter())
        .map(|(kind, options)| {
            let options = options.iter().map(|o| o.to_string()).collect();
            (kind.to_string(), options)
        })
        .collect();
    assert_eq!(
        documented, code,
        "docs/CONFIGURATION.md and config/validate.rs disagree"
    );
}
