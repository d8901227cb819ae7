//! The command line: `run`, `check`, `print-ruleset`, `remedy`, `status`, `probe`, `--version`. Hand-written (no parser
//! crate) to keep the router binary small.

use crate::config::{self, Config, Overrides};
use crate::consts::{DEFAULT_CONFIG, FW4_FORWARD_INCLUDE};
use crate::daemon::{self, include_status};
use crate::firewall::{render, static_forwards, text};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

const USAGE: &str = "\
usage: wilife-agent COMMAND [OPTIONS]

commands:
  run            run the daemon (applies the firewall, serves the API)
  check          validate the configuration and exit (non-zero on error)
  print-ruleset  print the nftables table that would be applied, without touching the kernel
  remedy         print the UCI changes (a `uci batch` script) that move cameras a hardware switch
                 hides from the camera rules into a network of their own; applies nothing
  status         ask the running daemon for its status
  probe          have the router connect to the Command Center's port of each forward now, and say
                 which answer (exits 1 when one does not); at most once per 10 s
  selftest       check the pure core on this CPU against known answers (for new ports, qemu)
  gen-token      print a new random API token (32 hex digits from /dev/urandom)
  rpcd list      (rpcd exec plugin) the methods LuCI may call, as JSON
  rpcd call M    (rpcd exec plugin) call method M with the JSON arguments on stdin
  --version      print the version

options:
  --config FILE        configuration file (default /etc/config/wilife)
  --wan-device DEV     WAN device, overrides the file (the init script passes it)
  --lan-device DEV     LAN device, overrides the file; may be repeated
  --foreground         (run) log to stderr instead of syslog
  --debug              (run) log debug messages too
  --nft PATH           (run) the nft program (default: nft from PATH)
  --ubus PATH          (run, print-ruleset, remedy) the ubus tool that asks netifd for the networks' devices
  --fw4-include FILE   (run, check) the installed fw4 include (default /usr/share/nftables.d/…/30-wilife.nft)
  --json               (status, probe) print the raw JSON; (print-ruleset) print only the nft JSON
  --text               (print-ruleset) print only the nft text
";

struct Args {
    command: String,
    config: PathBuf,
    overrides: Overrides,
    foreground: bool,
    debug: bool,
    json: bool,
    text: bool,
    nft: PathBuf,
    ubus: PathBuf,
    fw4_include: PathBuf,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut it = args.iter();
    let command = it.next().cloned().ok_or("no command given")?;
    let mut a = Args {
        command,
        config: PathBuf::from(DEFAULT_CONFIG),
        overrides: Overrides::default(),
        foreground: false,
        debug: false,
        json: false,
        text: false,
        nft: PathBuf::from("nft"),
        ubus: PathBuf::from("ubus"),
        fw4_include: PathBuf::from(FW4_FORWARD_INCLUDE),
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--config" | "-c" => a.config = PathBuf::from(value()?),
            "--wan-device" => a.overrides.wan_device = Some(value()?),
            "--lan-device" => a.overrides.lan_devices.push(value()?),
            "--nft" => a.nft = PathBuf::from(value()?),
            "--ubus" => a.ubus = PathBuf::from(value()?),
            "--fw4-include" => a.fw4_include = PathBuf::from(value()?),
            "--foreground" | "-f" => a.foreground = true,
            "--debug" => a.debug = true,
            "--json" => a.json = true,
            "--text" => a.text = true,
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(a)
}

/// Runs the command line; returns the exit code (0 ok, 1 failure, 2 usage error).
pub fn main(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        Some("--version" | "-V" | "version") => {
            println!("wilife-agent {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Some("--help" | "-h" | "help") => {
            print!("{USAGE}");
            return 0;
        }
        _ => {}
    }
    if args.first().map(String::as_str) == Some("rpcd") {
        return rpcd(&args[1..]);
    }
    let a = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wilife-agent: {e}\n\n{USAGE}");
            return 2;
        }
    };
    match a.command.as_str() {
        "run" => run(a),
        "check" => check(a),
        "print-ruleset" => print_ruleset(a),
        "remedy" => remedy(a),
        "status" => status(a),
        "probe" => probe(a),
        "selftest" => selftest(),
        "gen-token" => gen_token(),
        other => {
            eprintln!("wilife-agent: unknown command '{other}'\n\n{USAGE}");
            2
        }
    }
}

/// `rpcd list` / `rpcd call METHOD [--config FILE]`: always one JSON object on stdout.
fn rpcd(args: &[String]) -> i32 {
    use std::io::Read;
    let config_path = match args.iter().position(|a| a == "--config") {
        Some(i) => args.get(i + 1).map(PathBuf::from),
        None => Some(PathBuf::from(DEFAULT_CONFIG)),
    };
    let answer = match (args.first().map(String::as_str), args.get(1), config_path) {
        (Some("list"), _, _) => crate::rpcd::list(),
        (Some("call"), Some(method), Some(path)) => {
            let mut input = String::new();
            let read = std::io::stdin()
                .take(crate::rpcd::MAX_INPUT)
                .read_to_string(&mut input);
            match (read, config::api_access(&path)) {
                (Err(e), _) => {
                    serde_json::json!({"error": format!("cannot read the arguments: {e}")})
                }
                (_, Err(e)) => serde_json::json!({"error": e.to_string()}),
                (Ok(_), Ok(access)) => crate::rpcd::call(&access, method, &input),
            }
        }
        _ => {
            eprintln!("usage: wilife-agent rpcd list | rpcd call METHOD [--config FILE]");
            return 2;
        }
    };
    println!("{answer}");
    0
}

/// A new API token. OpenWrt's busybox has no `base64`, so the package's uci-defaults ask the agent.
fn gen_token() -> i32 {
    match crate::random::bytes::<16>() {
        Ok(bytes) => {
            println!("{}", crate::random::hex(&bytes));
            0
        }
        Err(e) => {
            eprintln!("wilife-agent: cannot read /dev/urandom: {e}");
            1
        }
    }
}

fn selftest() -> i32 {
    let (checks, failures) = crate::selftest::run();
    for f in &failures {
        eprintln!("selftest FAILED: {f}");
    }
    println!(
        "selftest: {} of {checks} checks passed ({}, {}-endian, {}-bit)",
        checks - failures.len(),
        std::env::consts::ARCH,
        if cfg!(target_endian = "big") {
            "big"
        } else {
            "little"
        },
        usize::BITS
    );
    i32::from(!failures.is_empty())
}

fn load(a: &Args) -> Result<Config, i32> {
    config::load(&a.config, &a.overrides).map_err(|errors| {
        for e in errors.iter() {
            eprintln!("wilife-agent: {e}");
        }
        1
    })
}

fn run(a: Args) -> i32 {
    crate::log::init(a.foreground, a.debug);
    let opts = daemon::Options {
        config_path: a.config,
        overrides: a.overrides,
        nft: a.nft,
        ubus: a.ubus,
        fw4_include: a.fw4_include,
    };
    match daemon::run(opts) {
        Ok(()) => 0,
        Err(e) => {
            // One syslog line per error (a config may have several).
            for line in e.to_string().lines() {
                crate::error!("{line}");
            }
            if !a.foreground {
                // Also on stderr: `run` failing at start is something the person at the console must see.
                eprintln!("wilife-agent: {e}");
            }
            1
        }
    }
}

fn check(a: Args) -> i32 {
    let c = match load(&a) {
        Ok(c) => c,
        Err(code) => return code,
    };
    println!(
        "{}: valid (direct access {:?}, {} Command Center(s), {} camera(s))",
        a.config.display(),
        c.direct_access,
        c.command_centers.len(),
        c.cameras.len()
    );
    match config::read_token(&c.api_token_file) {
        Err(e) => {
            eprintln!("wilife-agent: {}: {e}", c.api_token_file.display());
            return 1;
        }
        Ok(None) => println!(
            "{}: no token: changes through the API (LuCI's Delete too) are off",
            c.api_token_file.display()
        ),
        Ok(Some(_)) => {}
    }
    let inc = include_status(&a.fw4_include, c.connmark, None);
    if inc.present && !inc.matches_connmark {
        eprintln!(
            "wilife-agent: {} does not accept connmark 0x{:08x}: set agent.connmark to the bit it accepts",
            inc.path, c.connmark
        );
        return 1;
    }
    0
}

fn print_ruleset(a: Args) -> i32 {
    let mut c = match load(&a) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(e) = crate::net::netifd::resolve(&mut c, &a.ubus) {
        eprintln!("wilife-agent: the networks' devices are unknown ({e}): printing without them");
    }
    // Read-only, as the daemon reads it: addresses, neighbours and leases fill the sets; nothing is
    // written.
    let watched = crate::net::rtnl::Watched::of(&c);
    let state = crate::net::rtnl::dump(&watched, true).unwrap_or_default();
    let leases = crate::net::dhcp::read(&c.dhcp_leases, crate::clock::unix_now());
    let facts = crate::net::facts(&c, &state, &leases);
    let forwards = static_forwards(&c);
    let json = render::render(&render::Desired {
        config: &c,
        forwards: &forwards,
        facts: &facts,
    })
    .batch();
    let both = !a.json && !a.text;
    if a.json || both {
        if both {
            println!("# nft JSON, as `nft -j -f -` receives it");
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    }
    if a.text || both {
        if both {
            println!("\n# the same, as nft text");
        }
        print!("{}", text::to_text(&json));
    }
    0
}

/// `remedy`: the UCI changes that move the cameras a hardware switch hides into a network of their
/// own, as a `uci batch` script on stdout (what to know first on stderr). Read-only: nothing is
/// applied; LuCI applies them with rollback.
fn remedy(a: Args) -> i32 {
    let mut c = match load(&a) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(e) = crate::net::netifd::resolve(&mut c, &a.ubus) {
        eprintln!("wilife-agent: the networks' devices are unknown ({e})");
    }
    let watched = crate::net::rtnl::Watched::of(&c);
    let mut net = match crate::net::rtnl::dump(&watched, true) {
        Ok(net) => net,
        Err(e) => {
            eprintln!("wilife-agent: cannot read the network: {e}");
            return 1;
        }
    };
    crate::net::sysfs::switching(&mut net.links, &[]);
    match crate::net::remedy::files::plan_for(&c, &net) {
        Ok(plan) => {
            eprintln!("# {}", plan.headline());
            for note in &plan.notes {
                eprintln!("# {note}");
            }
            print!("{}", crate::net::remedy::uci_batch(&plan.changes));
            0
        }
        Err(reason) => {
            eprintln!("wilife-agent: nothing to apply: {reason}");
            0
        }
    }
}

/// Minimal HTTP GET to the local daemon.
/// The running agent's API on loopback (its port from the config) and its answer to one request;
/// `Err` is the exit status, the reason printed.
fn ask_api(a: &Args, method: &str, path: &str) -> Result<(SocketAddr, u16, String), i32> {
    let access = config::api_access(&a.config).map_err(|e| {
        eprintln!("wilife-agent: {e}");
        1
    })?;
    let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), access.port);
    let (code, body) = crate::client::request(addr, method, path, None).map_err(|e| {
        eprintln!("wilife-agent: {e}");
        1
    })?;
    Ok((addr, code, body))
}

/// `probe`: runs the end-to-end probe now; one line per hop of each port, then the problem if any.
fn probe(a: Args) -> i32 {
    let (_, code, body) = match ask_api(&a, "POST", "/api/v1/probe") {
        Ok(r) => r,
        Err(status) => return status,
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let problem = &v["probe"]["problem"];
    if a.json || code != 200 {
        println!("{}", body.trim());
        return if code == 200 && problem.is_null() {
            0
        } else {
            1
        };
    }
    let hops = v["probe"]["hops"].as_array().cloned().unwrap_or_default();
    if hops.is_empty() {
        println!("no forward in force: nothing to try");
    }
    for t in &hops {
        let hop = t["hop"].as_str().unwrap_or("?").replace('_', " ");
        let port = &t["external_port"];
        match (t["verdict"].as_str().unwrap_or("?"), t["why"].as_str()) {
            ("not_tried", why) => println!(
                "{hop} (external port {port}): not tried: {}",
                why.unwrap_or("?")
            ),
            (verdict, _) => println!(
                "{hop} TCP {} (external port {port}): {verdict} after {} ms",
                t["address"].as_str().unwrap_or("?"),
                t["ms"]
            ),
        }
    }
    match problem.as_str() {
        Some(p) => {
            println!("{p}");
            1
        }
        None => 0,
    }
}

fn status(a: Args) -> i32 {
    let (addr, code, body) = match ask_api(&a, "GET", "/api/v1/status") {
        Ok(r) => r,
        Err(status) => return status,
    };
    if a.json || code != 200 {
        println!("{}", body.trim());
        return if code == 200 { 0 } else { 1 };
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let fw = &v["firewall"];
    println!(
        "wilife-agent {} — up {} s, direct access: {}",
        v["version"].as_str().unwrap_or("?"),
        v["uptime_s"],
        v["mode"].as_str().unwrap_or("?")
    );
    println!(
        "WAN {}: {}",
        v["wan"]["device"].as_str().unwrap_or("?"),
        v["wan"]["ipv4"]
    );
    println!(
        "firewall: table {} {}, fw4 include {}, last reconcile {} ({})",
        fw["table"].as_str().unwrap_or("?"),
        if fw["table_present"] == true {
            "in force"
        } else {
            "MISSING"
        },
        if fw["fw4_include"]["in_fw4_ruleset"] == true {
            "active"
        } else {
            "NOT ACTIVE"
        },
        fw["last_reconcile"]["result"].as_str().unwrap_or("none"),
        fw["last_reconcile"]["error"].as_str().unwrap_or("no error"),
    );
    for f in v["forwards"].as_array().into_iter().flatten() {
        let ports = &f["external"];
        println!(
            "forward tcp {}-{} -> {} ({}): {} connections, {} bytes",
            ports["first"],
            ports["last"],
            f["target"].as_str().unwrap_or("?"),
            f["origin"].as_str().unwrap_or("?"),
            f["connections"],
            f["bytes"]
        );
    }
    // Whether the camera rules see each camera's traffic (a hardware switch may carry it past them).
    if let Ok((200, body)) = crate::client::request(addr, "GET", "/api/v1/cameras", None) {
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        for cam in doc["cameras"].as_array().into_iter().flatten() {
            println!(
                "camera {}: {} — {}",
                cam["name"].as_str().unwrap_or("?"),
                cam["verdict"].as_str().unwrap_or("?"),
                cam["verdict_message"].as_str().unwrap_or("")
            );
        }
    }
    0
}
