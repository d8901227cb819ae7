//! Issue 5: the OpenAPI document (agent/openapi.yaml) describes the real API. A lab router with a
//! camera, a present Command Center and a UPnP mapping answers every documented operation (and its
//! error cases); openapi-core (PyPI) validates each real answer against the document, which is closed,
//! so an undocumented field, status or type fails — as does an operation nobody exercised.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use wilife_lab::lab::*;

const TOKEN: &str = "contract-test-token-0123456789";

struct Answers {
    list: Vec<serde_json::Value>,
}

impl Answers {
    fn call(&mut self, lab: &Lab, method: &str, path: &str, host: &str, auth: Option<&str>) -> u16 {
        let to = SocketAddr::from((Ipv4Addr::LOCALHOST, API_PORT));
        let auth = auth.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let raw = lab
            .raw_http(
                &lab.router,
                to,
                format!(
                    "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
                )
                .into_bytes(),
            )
            .expect("the API answers");
        let (status, body) = split_response(&raw);
        serde_json::from_str::<serde_json::Value>(&body)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {body}"));
        self.list.push(
            serde_json::json!({"method": method, "path": path, "status": status, "body": body}),
        );
        status
    }
}

#[test]
fn every_answer_of_the_api_validates_against_the_openapi_document() {
    let mut lab = Lab::new();
    let text = lab
        .config(
            "upnp",
            &format!("config camera\n\toption name 'porch'\n\toption mac '{CAMERA_MAC}'\nconfig outbound 'outbound'\n\toption remote_client '1'\n"),
        );
    lab.set_token(TOKEN);
    let cfg = lab.write_config("wilife", &text);
    lab.start_upnp_agent(&cfg);
    lab.say_hello_to_router(&lab.cc);
    lab.say_hello_to_router(&lab.camera);
    assert_eq!(lab.add_mapping(&lab.cc, 20570, "TCP", CC_IP, 3600), 0);
    std::thread::sleep(Duration::from_millis(300));

    let mut a = Answers { list: Vec::new() };
    let local = "127.0.0.1:8780";
    for path in [
        "/api/v1",
        "/api/v1/status",
        "/api/v1/health",
        "/api/v1/diagnosis",
        "/api/v1/cameras",
        "/api/v1/remedy",
        "/api/v1/outbound",
        "/api/v1/mappings",
    ] {
        let status = a.call(&lab, "GET", path, local, None);
        assert!(
            status == 200 || (path == "/api/v1/health" && status == 503),
            "{path}: {status}"
        );
    }
    let cams = a
        .list
        .iter()
        .find(|x| x["path"] == "/api/v1/cameras")
        .unwrap();
    assert!(
        cams["body"].as_str().unwrap().contains("\"present\":true"),
        "{cams}"
    );
    // The mapping's own probe ran (nothing listens on the Command Center); another one at once is
    // refused by the rate limit.
    lab.time_until(Duration::from_secs(5), || {
        !lab.api_get("/api/v1/probe")["probe"].is_null()
    })
    .expect("the mapping's probe");
    assert_eq!(a.call(&lab, "GET", "/api/v1/probe", local, None), 200);
    assert_eq!(a.call(&lab, "POST", "/api/v1/probe", local, None), 429);
    assert_eq!(a.call(&lab, "PUT", "/api/v1/probe", local, None), 405);
    // Errors are documented too.
    assert_eq!(
        a.call(&lab, "GET", "/api/v1/status", "evil.example:8780", None),
        403
    );
    assert_eq!(a.call(&lab, "POST", "/api/v1/mappings", local, None), 405);
    let item = "/api/v1/mappings/tcp/20570";
    assert_eq!(a.call(&lab, "DELETE", item, local, None), 401);
    assert_eq!(
        a.call(&lab, "DELETE", item, local, Some("wrong-token-wrong-token")),
        401
    );
    assert_eq!(a.call(&lab, "GET", item, local, Some(TOKEN)), 405);
    assert_eq!(
        a.call(
            &lab,
            "DELETE",
            "/api/v1/mappings/tcp/notaport",
            local,
            Some(TOKEN)
        ),
        400
    );
    assert_eq!(a.call(&lab, "DELETE", item, local, Some(TOKEN)), 200);
    assert_eq!(a.call(&lab, "DELETE", item, local, Some(TOKEN)), 404);
    // And the states after the removal.
    for path in ["/api/v1/status", "/api/v1/diagnosis", "/api/v1/mappings"] {
        assert_eq!(a.call(&lab, "GET", path, local, None), 200);
    }

    lab.check_openapi(&a.list, false);
}
