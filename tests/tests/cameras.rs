//! Issue 5: the camera LAN rules and the outbound allowances, with real packets through the lab router
//! (fw4's ruleset loaded, the package's include in place).

use nix::sys::signal::Signal;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use wilife_lab::lab::*;

fn at(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

/// The porch camera on br-lan (by MAC only) plus `extra` config lines.
fn camera_config(lab: &Lab, extra: &str) -> String {
    lab.config(
        "off",
        &format!("config camera\n\toption name 'porch'\n\toption mac '{CAMERA_MAC}'\n{extra}"),
    )
}

fn start(lab: &mut Lab, text: &str) {
    let cfg = lab.write_config("wilife", text);
    lab.start_agent(&cfg, &[]);
    lab.wait_log("applied (startup)", Duration::from_secs(5));
}

fn reload(lab: &Lab, text: &str) {
    lab.write_config("wilife", text);
    let before = lab.log().matches("applied (reload)").count();
    lab.signal_agent(Signal::SIGHUP);
    lab.wait_log_count("applied (reload)", before + 1, Duration::from_secs(5));
}

/// Servers on every camera <-> Command Center service, both ways, plus decoys.
struct Services {
    _keep: Vec<EchoServer>,
}

fn services(lab: &Lab, camera_ns: &str) -> Services {
    let mut keep = Vec::new();
    for p in [22211, 5800, 50000, 8080] {
        keep.push(lab.echo_server(&lab.cc, p, "cc"));
    }
    for p in [22211, 5800, 50000, 8081] {
        keep.push(lab.echo_server(camera_ns, p, "camera"));
    }
    keep.push(lab.echo_server(&lab.other, 22, "other"));
    keep.push(lab.echo_server(&lab.remote, 80, "remote"));
    // The router's own SSH port (the router's namespace; fw4 accepts it from the LAN).
    keep.push(lab.echo_server(&lab.router, 22, "router"));
    Services { _keep: keep }
}

/// What the seed lists between a camera (in `cam_ns`, at `cam_ip`) and the Command Center: delivered.
/// The API places the camera behind `port` of `bridge`, and every path of it enforced.
fn assert_paths(lab: &Lab, port: &str, bridge: &str) {
    // The Command Center is configured by address: the router learns its MAC when it talks to it.
    lab.say_hello_to_router(&lab.cc);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let cams = lab.api_get("/api/v1/cameras");
        let cam = &cams["cameras"][0];
        let placed = cam["port"]["name"] == port
            && cam["port"]["bridge"] == bridge
            && cam["paths"][0]["peer_ports"][0] == "lan-cc";
        if placed {
            assert_eq!(cam["verdict"], "enforced", "{cam}");
            assert!(cam["port"]["switch_id"].is_null(), "{cam}");
            for p in cam["paths"].as_array().unwrap() {
                assert_eq!(p["verdict"], "enforced", "{p}");
            }
            return;
        }
        assert!(std::time::Instant::now() < deadline, "not placed: {cam}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn assert_camera_services_flow(lab: &Lab, cam_ns: &str, cam_ip: Ipv4Addr, multicast: bool) {
    for port in [22211, 5800, 50000] {
        assert!(
            lab.reaches(cam_ns, at(CC_IP, port)),
            "camera -> cc tcp/{port} must be delivered"
        );
    }
    assert!(
        lab.udp_delivered(cam_ns, 40000, &lab.cc, at(CC_IP, 5821)),
        "camera -> cc udp/5821 must be delivered"
    );
    for port in [22211, 5800, 50000] {
        assert!(
            lab.reaches(&lab.cc, at(cam_ip, port)),
            "cc -> camera tcp/{port} must be delivered"
        );
    }
    // The video port both ways (issue 17: the manual does not say which side opens it), for many
    // connections, not one.
    assert_eq!(
        lab.reaches_from_ports(cam_ns, at(CC_IP, 22211), 41000, 20),
        20,
        "camera -> cc video"
    );
    assert_eq!(
        lab.reaches_from_ports(&lab.cc, at(cam_ip, 22211), 42000, 20),
        20,
        "cc -> camera video"
    );
    assert!(
        lab.udp_delivered(&lab.cc, 40001, cam_ns, at(cam_ip, 5810)),
        "cc -> camera udp/5810 must be delivered"
    );
    if multicast {
        assert!(
            lab.ssdp_multicast_delivered(cam_ns, &lab.cc, CC_IP),
            "camera SSDP multicast must reach the cc"
        );
    }
}

#[test]
fn same_bridge_camera_talks_to_the_command_center_only_while_isolated() {
    let mut lab = Lab::new();
    let _s = services(&lab, &lab.camera.clone());
    let text = camera_config(&lab, "");
    start(&mut lab, &text);
    assert_camera_services_flow(&lab, &lab.camera, CAMERA_IP, true);
    // Veth ports have no hardware switch: the CPU bridges every frame, and the API says so, read
    // from the kernel's links and FDB.
    assert_paths(&lab, "lan-cam", "br-lan");

    // Isolation (the default): nothing else, in either direction.
    let blocked = [
        (at(REMOTE_IP, 80), "the internet"),
        (at(OTHER_IP, 22), "another LAN host"),
        (at(LAN_IP, 22), "the router's SSH port"),
        (at(CC_IP, 8080), "an unlisted port of the cc"),
    ];
    for (to, what) in blocked {
        assert!(
            !lab.reaches(&lab.camera, to),
            "camera -> {what} must be blocked"
        );
    }
    assert!(
        !lab.reaches(&lab.other, at(CAMERA_IP, 5800)),
        "another LAN host must not reach the camera"
    );
    assert!(
        !lab.reaches(&lab.cc, at(CAMERA_IP, 8081)),
        "the cc reaches only the camera's listed services"
    );
    // Stateless answer rules must not let a camera open connections from a listed source port: 40
    // connections from camera ports 50000-50039 (inside the UPnP range) and 5800-5821 to cc:8080.
    assert_eq!(
        lab.reaches_from_ports(&lab.camera, at(CC_IP, 8080), 50000, 40),
        0
    );
    assert_eq!(
        lab.reaches_from_ports(&lab.camera, at(CC_IP, 8080), 5800, 22),
        0
    );
    // Nor from the video port, now an answer port both ways: not to the cc's other ports, not to
    // another host; and the cc does not reach the camera's other ports from it either.
    assert_eq!(
        lab.reaches_from_ports(&lab.camera, at(CC_IP, 8080), 22211, 1),
        0
    );
    assert_eq!(
        lab.reaches_from_ports(&lab.camera, at(OTHER_IP, 22), 22211, 1),
        0
    );
    assert_eq!(
        lab.reaches_from_ports(&lab.cc, at(CAMERA_IP, 8081), 22211, 1),
        0
    );
    assert!(
        !lab.reaches(&lab.other, at(CAMERA_IP, 22211)),
        "another LAN host must not reach the camera's video port"
    );
    // ... while the other hosts are not affected.
    assert!(lab.reaches(&lab.other, at(REMOTE_IP, 80)));
    assert!(lab.reaches(&lab.other, at(CC_IP, 8080)));
    let status = lab.api_status();
    assert_eq!(status["firewall"]["table_present"], true, "{status}");

    // Someone deletes the bridge table (a `service firewall stop` deletes every table): restored,
    // and the camera is held again.
    assert!(lab
        .nft(&["delete", "table", "bridge", "wilife"])
        .status
        .success());
    lab.wait_log("restoring it", Duration::from_secs(5));
    lab.wait_log("applied (restore)", Duration::from_secs(5));
    assert!(!lab.reaches(&lab.camera, at(OTHER_IP, 22)));

    // A camera with a new address (same MAC) is still governed.
    lab.ip(&lab.camera, &["addr", "flush", "dev", "eth0"]);
    let new_ip = Ipv4Addr::new(192, 168, 50, 21);
    lab.ip(
        &lab.camera,
        &["addr", "add", &format!("{new_ip}/24"), "dev", "eth0"],
    );
    lab.ip(
        &lab.camera,
        &["route", "add", "default", "via", &LAN_IP.to_string()],
    );
    assert!(!lab.reaches(&lab.camera, at(REMOTE_IP, 80)));
    assert!(!lab.reaches(&lab.camera, at(OTHER_IP, 22)));
    assert!(!lab.reaches(&lab.camera, at(LAN_IP, 22)));
    assert!(lab.reaches(&lab.camera, at(CC_IP, 22211)));
    assert!(lab.reaches(&lab.cc, at(new_ip, 5800)));

    // Isolation off: the camera reaches everything again; its services still flow.
    reload(
        &lab,
        &camera_config(
            &lab,
            "config camera_rules 'cameras'\n\toption isolation '0'\n",
        ),
    );
    assert!(lab.reaches(&lab.camera, at(REMOTE_IP, 80)));
    assert!(lab.reaches(&lab.camera, at(OTHER_IP, 22)));
    assert!(lab.reaches(&lab.camera, at(LAN_IP, 22)));
    assert!(lab.reaches(&lab.cc, at(new_ip, 8081)));
    assert!(lab.reaches(&lab.camera, at(CC_IP, 22211)));

    // LukWerks video port: 22210 replaces 22211.
    reload(
        &lab,
        &camera_config(
            &lab,
            "config camera_rules 'cameras'\n\toption video_port '22210'\n",
        ),
    );
    let _lukwerks = lab.echo_server(&lab.cc, 22210, "cc");
    let _lukwerks_camera = lab.echo_server(&lab.camera, 22210, "camera");
    assert!(lab.reaches(&lab.camera, at(CC_IP, 22210)));
    assert!(
        lab.reaches(&lab.cc, at(new_ip, 22210)),
        "cc -> camera video, LukWerks"
    );
    assert!(!lab.reaches(&lab.camera, at(CC_IP, 22211)));
    assert!(!lab.reaches(&lab.cc, at(new_ip, 22211)));

    // No cameras any more: the bridge table goes in the same transaction.
    reload(&lab, &lab.config("off", ""));
    assert!(!lab
        .nft(&["list", "table", "bridge", "wilife"])
        .status
        .success());
    assert!(lab.reaches(&lab.camera, at(OTHER_IP, 22)));
}

/// The remedied layout (issue 28): the camera in a network of its own (the remedy's zone on br-cam,
/// `camera_device` in the agent's config), the Command Center on the LAN. Video and control cross the
/// router as the camera rules allow, isolation holds, and discovery crosses through the agent's SSDP
/// relay both ways, for the camera and the Command Center only, while the IGD still answers the
/// Command Center alone.
#[test]
fn remedied_layout_keeps_discovery_video_and_isolation() {
    let mut lab = Lab::new();
    lab.add_camera_network();
    lab.add_fw4_camera_zone();
    let _s = services(&lab, &lab.camnet.clone());
    // Multicast does not cross a router by itself.
    assert!(!lab.ssdp_multicast_delivered(&lab.camnet, &lab.cc, CC_IP));
    let text = lab
        .config(
            "upnp",
            &format!("config camera\n\toption name 'porch'\n\toption mac '{CAMNET_MAC}'\n"),
        )
        .replacen(
            "config agent 'main'\n",
            &format!("config agent 'main'\n\tlist camera_device '{CAM_DEV}'\n"),
            1,
        );
    let cfg = lab.write_config("wilife", &text);
    lab.start_upnp_agent(&cfg);
    lab.wait_log(
        &format!("SSDP relay between {CAM_DEV} and {LAN_DEV}"),
        Duration::from_secs(5),
    );
    // The camera has no fixed address (DHCP gives it one there): the router learns it when the
    // camera first talks, and the rules towards it follow.
    lab.say_hello_to_router(&lab.camnet);
    let learned = lab.time_until(Duration::from_secs(5), || {
        lab.reaches(&lab.cc, at(CAMNET_IP, 22211))
    });
    assert!(
        learned.is_some(),
        "the camera's learned address must open the way to it"
    );
    assert_camera_services_flow(&lab, &lab.camnet, CAMNET_IP, false);
    assert!(!lab.reaches(&lab.camnet, at(REMOTE_IP, 80)));
    assert!(!lab.reaches(&lab.camnet, at(OTHER_IP, 22)));
    assert!(!lab.reaches(&lab.camnet, at(CAMNET_ROUTER_IP, 22)));
    assert!(!lab.reaches(&lab.other, at(CAMNET_IP, 22211)));

    // Announcements, once the router knows the camera's address (it has talked to the router).
    let camera_heard = lab.time_until(Duration::from_secs(5), || {
        lab.ssdp_multicast_delivered(&lab.camnet, &lab.cc, CC_IP)
    });
    assert!(
        camera_heard.is_some(),
        "the camera's NOTIFY must reach the Command Center: {}",
        lab.log()
    );
    assert!(lab.ssdp_multicast_delivered(&lab.cc, &lab.camnet, CAMNET_IP));
    assert!(
        !lab.ssdp_multicast_delivered(&lab.other, &lab.camnet, CAMNET_IP),
        "another LAN host's SSDP must not reach the camera network"
    );

    // The Command Center searches: the camera answers through the relay, LOCATION its own address;
    // the IGD answers from the router's LAN address as before.
    let location = format!("http://{CAMNET_IP}:50000/camera.xml");
    let answers = lab.ssdp_search_answered(&lab.cc, &lab.camnet, CAMNET_IP, &location);
    let relayed: Vec<_> = answers
        .iter()
        .filter(|(_, a)| a.contains("lab-device"))
        .collect();
    assert_eq!(relayed.len(), 1, "{answers:?}");
    assert_eq!(relayed[0].0, at(LAN_IP, 1901));
    assert!(relayed[0].1.contains(&location));
    assert!(
        answers
            .iter()
            .any(|(from, a)| *from == at(LAN_IP, 1900) && a.contains("uuid:")),
        "the IGD must still answer the Command Center: {answers:?}"
    );
    // The camera searches: the Command Center answers through the relay; the IGD stays silent.
    let location = format!("http://{CC_IP}:50000/cc.xml");
    let answers = lab.ssdp_search_answered(&lab.camnet, &lab.cc, CC_IP, &location);
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].0, at(CAMNET_ROUTER_IP, 1901));
    assert!(answers[0].1.contains(&location) && answers[0].1.contains("lab-device"));
    // Another LAN host searching gets the IGD, never the camera.
    let answers = lab.ssdp_search_answered(&lab.other, &lab.camnet, CAMNET_IP, "http://x/");
    assert!(
        !answers.iter().any(|(_, a)| a.contains("lab-device")),
        "{answers:?}"
    );
}

#[test]
fn separate_camera_network_is_granted_across_the_routed_path() {
    let mut lab = Lab::new();
    lab.add_camera_network();
    let _s = services(&lab, &lab.camnet.clone());
    // Before the agent: fw4 rejects everything between the camera network and the LAN.
    assert!(!lab.reaches(&lab.camnet, at(CC_IP, 22211)));
    let text = lab.config(
        "off",
        &format!("config camera\n\toption mac '{CAMNET_MAC}'\n\toption ip '{CAMNET_IP}'\n"),
    );
    start(&mut lab, &text);
    assert_camera_services_flow(&lab, &lab.camnet, CAMNET_IP, false);
    // Routed between two bridges: the CPU sees every packet, the API says so.
    assert_paths(&lab, "cam-port", "br-cam");
    assert!(!lab.reaches(&lab.camnet, at(REMOTE_IP, 80)));
    assert!(!lab.reaches(&lab.camnet, at(OTHER_IP, 22)));
    assert!(!lab.reaches(&lab.camnet, at(CC_IP, 8080)));
    assert!(!lab.reaches(&lab.camnet, at(CAMNET_ROUTER_IP, 22)));
    assert!(!lab.reaches(&lab.other, at(CAMNET_IP, 5800)));
    assert!(!lab.reaches(&lab.other, at(CAMNET_IP, 22211)));
    assert!(!lab.reaches(&lab.cc, at(CAMNET_IP, 8081)));
    // Conntrack carries the answers: many camera connections from ports in the UPnP range get
    // nowhere but the listed services.
    assert_eq!(
        lab.reaches_from_ports(&lab.camnet, at(CC_IP, 8080), 50000, 20),
        0
    );
    assert_eq!(
        lab.reaches_from_ports(&lab.camnet, at(CC_IP, 22211), 50100, 20),
        20
    );
    // The video port, open both ways now, is no answer port either: not from the camera network,
    // not from the Command Center.
    assert_eq!(
        lab.reaches_from_ports(&lab.camnet, at(CC_IP, 8080), 22211, 1),
        0
    );
    assert_eq!(
        lab.reaches_from_ports(&lab.cc, at(CAMNET_IP, 8081), 22211, 1),
        0
    );
}

#[test]
fn outbound_allowances_work_without_the_lan_to_wan_forwarding() {
    let mut lab = Lab::new();
    lab.load_fw4_without_lan_to_wan();
    let _servers: Vec<EchoServer> = [443, 5222, 465, 25, 554, 8080]
        .iter()
        .map(|p| lab.echo_server(&lab.remote.clone(), *p, "remote"))
        .collect();
    // Without the agent, fw4 now rejects LAN -> WAN.
    assert!(!lab.reaches(&lab.cc, at(REMOTE_IP, 443)));
    let ob = |lab: &Lab, online: u8, email: u8, viewer: u8| {
        lab.config(
            "off",
            &format!(
                "config outbound 'outbound'\n\toption wilife_online '{online}'\n\toption relay '0'\n\toption email '{email}'\n\toption smtp_port '465'\n\toption remote_client '{viewer}'\n"
            ),
        )
    };
    let text = ob(&lab, 1, 1, 0);
    start(&mut lab, &text);
    for p in [443, 5222, 465] {
        assert!(
            lab.reaches(&lab.cc, at(REMOTE_IP, p)),
            "cc -> internet tcp/{p}"
        );
    }
    for p in [25, 554, 8080] {
        assert!(
            !lab.reaches(&lab.cc, at(REMOTE_IP, p)),
            "cc -> internet tcp/{p} stays blocked"
        );
    }
    assert!(
        !lab.reaches(&lab.other, at(REMOTE_IP, 443)),
        "only the cc has the allowance"
    );

    // Each group is switchable.
    reload(&lab, &ob(&lab, 0, 1, 0));
    assert!(!lab.reaches(&lab.cc, at(REMOTE_IP, 443)));
    assert!(!lab.reaches(&lab.cc, at(REMOTE_IP, 5222)));
    assert!(lab.reaches(&lab.cc, at(REMOTE_IP, 465)));
    reload(&lab, &ob(&lab, 0, 0, 1));
    assert!(!lab.reaches(&lab.cc, at(REMOTE_IP, 465)));
    // The remote viewing client may be any LAN host.
    assert!(lab.reaches(&lab.other, at(REMOTE_IP, 554)));
    assert!(lab.reaches(&lab.other, at(REMOTE_IP, 443)));
    assert!(!lab.reaches(&lab.other, at(REMOTE_IP, 8080)));
}

#[test]
fn a_kernel_without_the_bridge_family_keeps_everything_else() {
    // Fault injection (no such kernel here): an nft that refuses any batch building a bridge table,
    // as a router without kmod-nft-bridge does. Everything else goes to the real nft.
    let mut lab = Lab::new();
    let fake = lab.write_config(
        "nft-without-bridge",
        "#!/bin/sh\n\
         if [ \"$3\" = /proc/self/fd/0 ]; then\n\
           batch=$(cat)\n\
           case \"$batch\" in *'\"family\":\"bridge\"'*) echo 'Error: Could not process rule: Operation not supported' >&2; exit 1;; esac\n\
           printf '%s' \"$batch\" | exec nft \"$@\"\n\
         fi\n\
         exec nft \"$@\"\n",
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let _cc = lab.echo_server(&lab.cc.clone(), 20570, "cc");
    let text = lab.config(
        "static",
        &format!("config camera\n\toption mac '{CAMERA_MAC}'\n"),
    );
    let cfg = lab.write_config("wilife", &text);
    lab.start_agent(&cfg, &["--nft", fake.to_str().unwrap()]);
    lab.wait_log(
        "camera rules between bridge ports refused",
        Duration::from_secs(5),
    );
    // The forward and the routed camera rules are in force ...
    assert_eq!(
        lab.tcp_exchange(&lab.remote, at(WAN_IP, 20570), "hi")
            .unwrap(),
        "cc:hi"
    );
    let _remote = lab.echo_server(&lab.remote.clone(), 80, "remote");
    assert!(
        !lab.reaches(&lab.camera, at(REMOTE_IP, 80)),
        "routed isolation holds"
    );
    // ... and the gap is said plainly.
    let cams = lab.api_get("/api/v1/cameras");
    assert_eq!(cams["cameras"][0]["rules"], "routed_only", "{cams}");
    let to = at(std::net::Ipv4Addr::LOCALHOST, API_PORT);
    let (code, body) = lab
        .http(&lab.router, to, "GET", "/api/v1/health", "127.0.0.1:8780")
        .unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("kmod-nft-bridge"), "{body}");
    assert!(!lab
        .nft(&["list", "table", "bridge", "wilife"])
        .status
        .success());
}
