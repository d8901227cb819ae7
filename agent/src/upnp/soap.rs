//! SOAP for UPnP control: reads a request envelope into a checked call, writes responses and faults.
//! Pure.

use super::description::{find_action, Action, Service, SOAP_ENVELOPE_NS};
use super::error::{Refusal, UpnpError};
use super::xml::{self, escape};
use std::collections::BTreeMap;

/// A control call whose action exists at the requested version and whose arguments are exactly the
/// action's inputs.
#[derive(Debug)]
pub struct Call {
    pub service: Service,
    pub version: u8,
    pub action: &'static Action,
    pub args: BTreeMap<String, String>,
}

impl Call {
    /// An input argument's text (present by construction).
    pub fn arg(&self, name: &str) -> &str {
        self.args.get(name).map_or("", String::as_str)
    }

    fn number<T: std::str::FromStr>(&self, name: &str, what: &str) -> Result<T, Refusal> {
        let raw = self.arg(name);
        raw.trim().parse::<T>().map_err(|_| {
            Refusal::new(
                UpnpError::InvalidArgs,
                format!("{name} '{raw:.40}' is not {what}"),
            )
        })
    }
    /// A ui2 argument.
    pub fn ui2(&self, name: &str) -> Result<u16, Refusal> {
        self.number(name, "a number from 0 to 65535")
    }
    /// A ui4 argument.
    pub fn ui4(&self, name: &str) -> Result<u32, Refusal> {
        self.number(name, "a number from 0 to 4294967295")
    }
    /// A boolean argument ("0"/"1", "false"/"true", "no"/"yes").
    pub fn boolean(&self, name: &str) -> Result<bool, Refusal> {
        match self.arg(name).trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => Ok(true),
            "0" | "false" | "no" => Ok(false),
            other => Err(Refusal::new(
                UpnpError::InvalidArgs,
                format!("{name} '{other:.40}' is not a boolean"),
            )),
        }
    }
}

/// The SOAPACTION header: `"urn:…:service:WANIPConnection:1#AddPortMapping"` (quotes optional).
pub fn parse_soap_action(header: &str) -> Option<(&str, &str)> {
    let h = header.trim();
    let h = h
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(h);
    h.rsplit_once('#')
}

/// Is a Content-Type header XML (`text/xml` or `application/xml`, with any parameters)?
pub fn is_xml(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let media = ct.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case("text/xml") || media.eq_ignore_ascii_case("application/xml")
    })
}

/// Reads a control request that arrived at `service`'s control URL; `soap_action` is its SOAPAction
/// header, which must name the action the body calls.
pub fn parse_call(body: &str, soap_action: &str, service: Service) -> Result<Call, Refusal> {
    let bad = |m: String| Refusal::new(UpnpError::InvalidAction, m);
    let root = xml::parse(body).map_err(|e| bad(e.to_string()))?;
    if root.name != "Envelope" || root.ns.as_deref() != Some(SOAP_ENVELOPE_NS) {
        return Err(bad(format!(
            "the document is <{}> in namespace {:?}, not a SOAP 1.1 Envelope",
            root.name, root.ns
        )));
    }
    let body_el = root
        .children
        .iter()
        .find(|c| c.name == "Body" && c.ns.as_deref() == Some(SOAP_ENVELOPE_NS))
        .ok_or_else(|| bad("the envelope has no SOAP Body".into()))?;
    let [call_el] = body_el.children.as_slice() else {
        return Err(bad(format!(
            "the SOAP Body holds {} elements; exactly one action is expected",
            body_el.children.len()
        )));
    };
    let ns = call_el.ns.as_deref().unwrap_or("");
    let (called, version) = Service::from_urn(ns)
        .filter(|(s, _)| *s == service)
        .ok_or_else(|| {
            bad(format!(
                "action namespace '{ns:.80}' is not a service at this control URL"
            ))
        })?;
    match parse_soap_action(soap_action) {
        Some((urn, name)) if urn == ns && name == call_el.name => {}
        _ => {
            return Err(bad(format!(
                "SOAPAction '{soap_action:.120}' does not match the body ({ns}#{})",
                call_el.name
            )))
        }
    }
    let action = find_action(called, version, &call_el.name)
        .ok_or_else(|| bad(format!("{ns} has no action {:.60}", call_el.name)))?;
    let mut args = BTreeMap::new();
    for a in &call_el.children {
        if !a.children.is_empty() {
            return Err(Refusal::new(
                UpnpError::InvalidArgs,
                format!("argument {} has child elements", a.name),
            ));
        }
        if !action.inputs.iter().any(|(n, _)| *n == a.name) {
            return Err(Refusal::new(
                UpnpError::InvalidArgs,
                format!("{} takes no argument {:.60}", action.name, a.name),
            ));
        }
        if args.insert(a.name.clone(), a.text.clone()).is_some() {
            return Err(Refusal::new(
                UpnpError::InvalidArgs,
                format!("argument {} given twice", a.name),
            ));
        }
    }
    if let Some((missing, _)) = action.inputs.iter().find(|(n, _)| !args.contains_key(*n)) {
        return Err(Refusal::new(
            UpnpError::InvalidArgs,
            format!("{} needs argument {missing}", action.name),
        ));
    }
    Ok(Call {
        service: called,
        version,
        action,
        args,
    })
}

const ENVELOPE_OPEN: &str = "<?xml version=\"1.0\"?>\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>";
const ENVELOPE_CLOSE: &str = "</s:Body></s:Envelope>\n";

/// A successful response with the output arguments in the action's order.
pub fn response(call: &Call, outputs: &[(&str, String)]) -> String {
    let mut out = format!(
        "{ENVELOPE_OPEN}<u:{}Response xmlns:u=\"{}\">",
        call.action.name,
        call.service.urn(call.version)
    );
    for (name, value) in outputs {
        out.push_str(&format!("<{name}>{}</{name}>", escape(value)));
    }
    out.push_str(&format!(
        "</u:{}Response>{ENVELOPE_CLOSE}",
        call.action.name
    ));
    out
}

/// A UPnP fault (sent with HTTP 500).
pub fn fault(error: UpnpError) -> String {
    format!(
        "{ENVELOPE_OPEN}<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>\
<detail><UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>{}</errorCode>\
<errorDescription>{}</errorDescription></UPnPError></detail></s:Fault>{ENVELOPE_CLOSE}",
        error.code(),
        error.description()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(ns: &str, action: &str, args: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"{SOAP_ENVELOPE_NS}\"><s:Body>\
<u:{action} xmlns:u=\"{ns}\">{args}</u:{action}></s:Body></s:Envelope>"
        )
    }

    const DELETE_ARGS: &str =
        "<NewRemoteHost></NewRemoteHost><NewExternalPort>20570</NewExternalPort><NewProtocol>TCP</NewProtocol>";

    #[test]
    fn a_good_call_is_read() {
        let body = envelope(WANIP, "DeletePortMapping", DELETE_ARGS);
        let header = format!("\"{WANIP}#DeletePortMapping\"");
        let call = parse_call(&body, &header, Service::WanIp).unwrap();
        assert_eq!((call.action.name, call.version), ("DeletePortMapping", 1));
        assert_eq!(call.ui2("NewExternalPort").unwrap(), 20570);
        assert_eq!(call.arg("NewRemoteHost"), "");
        let v2 = envelope(
            super::super::description::WANIP_V2,
            "GetExternalIPAddress",
            "",
        );
        let header = format!(
            "\"{}#GetExternalIPAddress\"",
            super::super::description::WANIP_V2
        );
        assert_eq!(parse_call(&v2, &header, Service::WanIp).unwrap().version, 2);
        // A SOAPAction of another action, or none that names one, is refused.
        for wrong in [
            "",
            "\"\"",
            "GetExternalIPAddress",
            "\"urn:x#GetExternalIPAddress\"",
        ] {
            assert!(parse_call(&v2, wrong, Service::WanIp).is_err(), "{wrong}");
        }
    }

    const WANIP: &str = super::super::description::WANIP_V1;

    #[test]
    fn bad_calls_get_401_or_402() {
        // The SOAPAction each body's own call would carry (any, where the body names none).
        let sa = |action: &str| format!("\"{WANIP}#{action}\"");
        let del = sa("DeletePortMapping");
        let cases: Vec<(String, String, u16, &str)> = vec![
            ("<a".into(), del.clone(), 401, "malformed"),
            ("<x:Envelope xmlns:x=\"urn:other\"/>".into(), del.clone(), 401, "not a SOAP"),
            (envelope("urn:schemas-upnp-org:service:Other:1", "AddPortMapping", ""), sa("AddPortMapping"), 401, "not a service"),
            (envelope(super::super::description::COMMON_IF, "GetTotalBytesSent", ""), sa("GetTotalBytesSent"), 401, "not a service"),
            (envelope(WANIP, "AddAnyPortMapping", ""), sa("AddAnyPortMapping"), 401, "has no action"),
            (envelope(WANIP, "FormatDisk", ""), sa("FormatDisk"), 401, "has no action"),
            (envelope(WANIP, "DeletePortMapping", DELETE_ARGS), sa("AddPortMapping"), 401, "does not match"),
            (envelope(WANIP, "DeletePortMapping", "<NewExternalPort>1</NewExternalPort>"), del.clone(), 402, "needs argument"),
            (envelope(WANIP, "DeletePortMapping", &format!("{DELETE_ARGS}<Extra>1</Extra>")), del.clone(), 402, "takes no argument"),
            (envelope(WANIP, "DeletePortMapping", &format!("{DELETE_ARGS}<NewProtocol>UDP</NewProtocol>")), del.clone(), 402, "given twice"),
            (envelope(WANIP, "DeletePortMapping", "<NewRemoteHost><b/></NewRemoteHost><NewExternalPort>1</NewExternalPort><NewProtocol>TCP</NewProtocol>"), del.clone(), 402, "child elements"),
            (format!("<s:Envelope xmlns:s=\"{SOAP_ENVELOPE_NS}\"><s:Body/></s:Envelope>"), del.clone(), 401, "exactly one action"),
            (format!("<s:Envelope xmlns:s=\"{SOAP_ENVELOPE_NS}\"/>"), del.clone(), 401, "no SOAP Body"),
        ];
        for (body, header, code, needle) in cases {
            let r = parse_call(&body, &header, Service::WanIp).unwrap_err();
            assert_eq!(r.error.code(), code, "{body:.80}: {r}");
            assert!(r.reason.contains(needle), "{body:.80}: {r}");
        }
    }

    #[test]
    fn numbers_and_booleans_are_checked() {
        let body = envelope(
            WANIP,
            "DeletePortMapping",
            "<NewRemoteHost/><NewExternalPort>70000</NewExternalPort><NewProtocol>TCP</NewProtocol>",
        );
        let del = format!("\"{WANIP}#DeletePortMapping\"");
        let call = parse_call(&body, &del, Service::WanIp).unwrap();
        assert_eq!(call.ui2("NewExternalPort").unwrap_err().error.code(), 402);
        for bad in ["-1", "1e3", "0x10", ""] {
            let body = envelope(
                WANIP,
                "DeletePortMapping",
                &format!("<NewRemoteHost/><NewExternalPort>{bad}</NewExternalPort><NewProtocol>TCP</NewProtocol>"),
            );
            let call = parse_call(&body, &del, Service::WanIp).unwrap();
            assert!(call.ui2("NewExternalPort").is_err(), "{bad}");
            assert!(call.boolean("NewProtocol").is_err());
        }
    }

    #[test]
    fn responses_and_faults_are_well_formed() {
        let body = envelope(WANIP, "GetExternalIPAddress", "");
        let header = format!("\"{WANIP}#GetExternalIPAddress\"");
        let call = parse_call(&body, &header, Service::WanIp).unwrap();
        let r = response(&call, &[("NewExternalIPAddress", "203.0.113.1".into())]);
        let doc = xml::parse(&r).unwrap();
        let resp = &doc.child("Body").unwrap().children[0];
        assert_eq!(resp.name, "GetExternalIPAddressResponse");
        assert_eq!(resp.ns.as_deref(), Some(WANIP));
        assert_eq!(resp.children[0].text, "203.0.113.1");
        let f = xml::parse(&fault(UpnpError::ConflictInMappingEntry)).unwrap();
        let detail = f
            .child("Body")
            .unwrap()
            .child("Fault")
            .unwrap()
            .child("detail")
            .unwrap();
        let e = detail.child("UPnPError").unwrap();
        assert_eq!(e.child("errorCode").unwrap().text, "718");
        assert_eq!(
            e.child("errorDescription").unwrap().text,
            "ConflictInMappingEntry"
        );
    }
}
