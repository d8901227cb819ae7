//! rpcd's exec-plugin protocol, so LuCI reaches the agent through ubus (its session and ACLs guard
//! it) and the browser never talks to the agent's port. `/usr/libexec/rpcd/luci.wilife` is a two-line
//! wrapper that execs `wilife-agent rpcd "$@"`:
//!
//! - `rpcd list` prints the methods and their argument signatures as one JSON object;
//! - `rpcd call METHOD` reads the JSON arguments on stdin and prints the JSON result.
//!
//! Every answer is a JSON object, errors included (`{"error": "…"}`): LuCI shows the words instead of
//! a bare ubus failure, and a stopped agent or wrong arguments never crash or hang the caller.

use crate::client;
use crate::config::ApiAccess;
use serde_json::{json, Map, Value};
use std::net::{Ipv4Addr, SocketAddr};

/// Read-only methods: (method, API path).
const READ: &[(&str, &str)] = &[
    ("status", "/api/v1/status"),
    ("diagnosis", "/api/v1/diagnosis"),
    ("mappings", "/api/v1/mappings"),
    ("cameras", "/api/v1/cameras"),
    ("remedy", "/api/v1/remedy"),
    ("outbound", "/api/v1/outbound"),
    ("health", "/api/v1/health"),
    ("last_probe", "/api/v1/probe"),
];

/// The end-to-end probe, run now (a read grant suffices: it changes nothing, and the agent keeps its
/// rate).
const PROBE: (&str, &str) = ("probe", "/api/v1/probe");

/// The service's init script: `start` asks procd to run the agent (LuCI's button while it is down).
/// A method of its own, so the grant to start it is not a grant to start or stop any service.
const INIT_SCRIPT: &str = "/etc/init.d/wilife";

/// The largest argument document accepted on stdin.
pub const MAX_INPUT: u64 = 64 * 1024;

/// `list`: each method with its arguments, typed by example as rpcd wants (`"str"`, `32` = int32).
pub fn list() -> Value {
    let mut m = Map::new();
    for (name, _) in READ {
        m.insert((*name).into(), json!({}));
    }
    m.insert(PROBE.0.into(), json!({}));
    m.insert("start".into(), json!({}));
    m.insert(
        "delete_mapping".into(),
        json!({"protocol": "str", "port": 32}),
    );
    Value::Object(m)
}

fn error(message: impl Into<String>) -> Value {
    json!({ "error": message.into() })
}

/// The API request a `call` makes: (HTTP method, path, token).
pub type Plan<'a> = (&'static str, String, Option<&'a str>);

/// What `call METHOD` with the arguments `input` (untrusted JSON from the caller) asks the API (pure);
/// `Err` is the answer to give instead.
pub fn plan<'a>(access: &'a ApiAccess, method: &str, input: &str) -> Result<Plan<'a>, Value> {
    let args: Value = if input.trim().is_empty() {
        json!({})
    } else {
        match serde_json::from_str(input) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return Err(error("the arguments must be a JSON object")),
            Err(e) => return Err(error(format!("the arguments are not JSON: {e}"))),
        }
    };
    if let Some((_, path)) = READ.iter().find(|(n, _)| *n == method) {
        return Ok(("GET", path.to_string(), None));
    }
    if method == PROBE.0 {
        return Ok(("POST", PROBE.1.to_string(), None));
    }
    if method != "delete_mapping" {
        let shown: String = method.chars().take(40).collect();
        return Err(error(format!("unknown method '{shown}'; see `list`")));
    }
    let protocol = args["protocol"].as_str().unwrap_or("TCP");
    if !protocol.eq_ignore_ascii_case("tcp") {
        let shown: String = protocol.chars().take(20).collect();
        return Err(error(format!(
            "protocol '{shown}': only TCP mappings exist"
        )));
    }
    let Some(port) = args["port"].as_u64().filter(|p| (1..=65535).contains(p)) else {
        return Err(error("port must be a number from 1 to 65535"));
    };
    let Some(token) = access.token.as_deref() else {
        return Err(error(format!(
            "changes through the API are disabled: no token in {}",
            access.token_file.display()
        )));
    };
    Ok((
        "DELETE",
        format!("/api/v1/mappings/tcp/{port}"),
        Some(token),
    ))
}

/// `call METHOD` with `input` (stdin) against the agent reached by `access`.
pub fn call(access: &ApiAccess, method: &str, input: &str) -> Value {
    if method == "start" {
        return start(INIT_SCRIPT);
    }
    let (method_http, path, token) = match plan(access, method, input) {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), access.port);
    match client::request(addr, method_http, &path, token) {
        // The service is not running (or not listening): the views offer to start it.
        Err(e) => json!({
            "error": format!("the wilife-agent service does not answer: {e}"),
            "not_running": true,
        }),
        Ok((status, body)) => match serde_json::from_str::<Value>(&body) {
            // The API's own error document carries the words.
            Ok(v) if status >= 400 => {
                let message = v["error"]["message"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("the agent answered {status}"));
                // /health's 503 is an answer, not a failure.
                if method == "health" {
                    v
                } else {
                    json!({ "error": message, "status": status })
                }
            }
            Ok(v) => v,
            Err(e) => error(format!("the agent answered {status} with no JSON: {e}")),
        },
    }
}

/// Runs `script start`: `{"started": true}`, or what went wrong.
fn start(script: &str) -> Value {
    use std::process::{Command, Stdio};
    let run = Command::new(script)
        .arg("start")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output();
    match run {
        Ok(out) if out.status.success() => json!({ "started": true }),
        Ok(out) => error(format!(
            "{script} start failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => error(format!("cannot run {script}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(token: Option<&str>) -> ApiAccess {
        ApiAccess {
            port: 1,
            token: token.map(str::to_string),
            token_file: crate::consts::DEFAULT_API_TOKEN_FILE.into(),
        }
    }

    #[test]
    fn list_names_every_method_with_typed_arguments() {
        let l = list();
        for m in [
            "status",
            "diagnosis",
            "mappings",
            "cameras",
            "outbound",
            "health",
            "probe",
            "last_probe",
            "start",
        ] {
            assert_eq!(l[m], json!({}), "{m}");
        }
        let c = config(None);
        assert_eq!(
            plan(&c, "probe", "").unwrap(),
            ("POST", "/api/v1/probe".to_string(), None)
        );
        assert_eq!(
            plan(&c, "last_probe", "").unwrap(),
            ("GET", "/api/v1/probe".to_string(), None)
        );
        assert_eq!(l["delete_mapping"], json!({"protocol": "str", "port": 32}));
    }

    #[test]
    fn start_runs_the_init_script_and_says_how_it_went() {
        assert_eq!(start("/bin/true"), json!({ "started": true }));
        let failed = start("/bin/false");
        assert!(failed["error"]
            .as_str()
            .unwrap()
            .starts_with("/bin/false start failed"));
        let missing = start("/nonexistent/wilife");
        assert!(missing["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot run /nonexistent/wilife"));
    }

    #[test]
    fn bad_arguments_and_a_stopped_agent_are_json_errors() {
        let c = config(Some("0123456789abcdef"));
        let msg = |v: Value| v["error"].as_str().unwrap_or("").to_string();
        assert!(msg(call(&c, "delete_mapping", "[1]")).contains("JSON object"));
        assert!(msg(call(&c, "delete_mapping", "{")).contains("not JSON"));
        assert!(msg(call(&c, "delete_mapping", r#"{"port": 70000}"#)).contains("1 to 65535"));
        assert!(msg(call(
            &c,
            "delete_mapping",
            r#"{"protocol": "UDP", "port": 20570}"#
        ))
        .contains("only TCP"));
        assert!(msg(call(&c, "reboot", "{}")).contains("unknown method"));
        // Port 1 on loopback: nothing listens there.
        let down = call(&c, "status", "");
        assert!(msg(down.clone()).contains("does not answer"));
        assert_eq!(down["not_running"], true);
        let no_token = config(None);
        assert!(msg(call(&no_token, "delete_mapping", r#"{"port": 20570}"#))
            .contains("no token in /etc/wilife/api_token"));
    }
}
