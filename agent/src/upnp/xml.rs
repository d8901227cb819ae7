//! A small, strict XML reader for SOAP requests: elements, namespaces, text, the five predefined entities
//! and character references, comments, CDATA. No DTD at all (so no entity expansion, no external
//! entities), and hard limits on size, depth, element and attribute count: a hostile body costs work
//! linear in its size.

use crate::consts::{UPNP_MAX_BODY, XML_MAX_ATTRIBUTES, XML_MAX_DEPTH, XML_MAX_ELEMENTS};
use std::fmt;

/// One element with its resolved namespace, its own text (concatenated) and its child elements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub ns: Option<String>,
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child with this local name (any namespace).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed XML at byte {}: {}", self.offset, self.message)
    }
}

/// How much a document may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub bytes: usize,
    pub depth: usize,
    pub elements: usize,
    /// Attributes of one element (each is checked against the others: the bound keeps it linear).
    pub attributes: usize,
}

/// The limits for SOAP requests from clients.
pub const SOAP_LIMITS: Limits = Limits {
    bytes: UPNP_MAX_BODY,
    depth: XML_MAX_DEPTH,
    elements: XML_MAX_ELEMENTS,
    attributes: XML_MAX_ATTRIBUTES,
};

struct Reader<'a> {
    s: &'a str,
    pos: usize,
    elements: usize,
    limits: Limits,
    /// Namespace declarations in scope, innermost last: (prefix, uri); prefix "" is the default.
    scopes: Vec<Vec<(String, String)>>,
}

/// Parses a whole SOAP-sized document into its root element.
pub fn parse(input: &str) -> Result<Element, XmlError> {
    parse_with(input, SOAP_LIMITS)
}

/// Parses a whole document within `limits`.
pub fn parse_with(input: &str, limits: Limits) -> Result<Element, XmlError> {
    if input.len() > limits.bytes {
        return Err(XmlError {
            offset: limits.bytes,
            message: format!("document larger than {} bytes", limits.bytes),
        });
    }
    let mut r = Reader {
        s: input.strip_prefix('\u{feff}').unwrap_or(input),
        pos: 0,
        elements: 0,
        limits,
        scopes: Vec::new(),
    };
    r.misc()?;
    if !r.rest().starts_with('<') {
        return Err(r.err("expected the root element"));
    }
    let root = r.element(0)?;
    r.misc()?;
    if r.pos < r.s.len() {
        return Err(r.err("content after the root element"));
    }
    Ok(root)
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn err(&self, message: &str) -> XmlError {
        XmlError {
            offset: self.pos,
            message: message.to_string(),
        }
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn expect(&mut self, token: &str) -> Result<(), XmlError> {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            Ok(())
        } else {
            Err(self.err(&format!("expected '{token}'")))
        }
    }

    /// Skips to just after `end`.
    fn skip_past(&mut self, end: &str, what: &str) -> Result<&'a str, XmlError> {
        match self.rest().find(end) {
            Some(i) => {
                let inner = &self.rest()[..i];
                self.pos += i + end.len();
                Ok(inner)
            }
            None => Err(self.err(&format!("unterminated {what}"))),
        }
    }

    /// Whitespace, comments and processing instructions (the XML declaration among them).
    fn misc(&mut self) -> Result<(), XmlError> {
        loop {
            self.skip_ws();
            let rest = self.rest();
            if rest.starts_with("<?") {
                self.skip_past("?>", "processing instruction")?;
            } else if rest.starts_with("<!--") {
                self.skip_past("-->", "comment")?;
            } else if rest.starts_with("<!DOCTYPE") || rest.starts_with("<!ENTITY") {
                return Err(self.err("document type declarations are not accepted"));
            } else {
                return Ok(());
            }
        }
    }

    fn name(&mut self) -> Result<&'a str, XmlError> {
        let rest = self.rest();
        let len = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        let name = &rest[..len];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
        {
            return Err(self.err("expected a name"));
        }
        self.pos += len;
        Ok(name)
    }

    fn resolve(&self, prefix: &str) -> Option<String> {
        self.scopes
            .iter()
            .rev()
            .flat_map(|s| s.iter())
            .find(|(p, _)| p == prefix)
            .map(|(_, uri)| uri.clone())
            .filter(|uri| !uri.is_empty())
    }

    /// An element starting at '<', with its content and end tag.
    fn element(&mut self, depth: usize) -> Result<Element, XmlError> {
        if depth >= self.limits.depth {
            return Err(self.err(&format!(
                "nested deeper than {} elements",
                self.limits.depth
            )));
        }
        self.elements += 1;
        if self.elements > self.limits.elements {
            return Err(self.err(&format!("more than {} elements", self.limits.elements)));
        }
        self.expect("<")?;
        let qname = self.name()?;
        let mut decls = Vec::new();
        let mut attr_names: Vec<&str> = Vec::new();
        let empty = loop {
            let before = self.pos;
            self.skip_ws();
            if self.rest().starts_with("/>") {
                self.pos += 2;
                break true;
            }
            if self.rest().starts_with('>') {
                self.pos += 1;
                break false;
            }
            if self.pos == before {
                return Err(self.err("expected whitespace, '>' or '/>'"));
            }
            let attr = self.name()?;
            if attr_names.len() == self.limits.attributes {
                return Err(self.err(&format!("more than {} attributes", self.limits.attributes)));
            }
            if attr_names.contains(&attr) {
                return Err(self.err(&format!("attribute '{attr}' given twice")));
            }
            attr_names.push(attr);
            self.skip_ws();
            self.expect("=")?;
            self.skip_ws();
            let quote = match self.rest().chars().next() {
                Some(q @ ('"' | '\'')) => q,
                _ => return Err(self.err("expected a quoted attribute value")),
            };
            self.pos += 1;
            let raw = self.skip_past(&quote.to_string(), "attribute value")?;
            if raw.contains('<') {
                return Err(self.err("'<' in an attribute value"));
            }
            let value = unescape(raw).map_err(|m| self.err(&m))?;
            if attr == "xmlns" {
                decls.push((String::new(), value));
            } else if let Some(prefix) = attr.strip_prefix("xmlns:") {
                decls.push((prefix.to_string(), value));
            }
        };
        self.scopes.push(decls);
        let (prefix, local) = qname.split_once(':').unwrap_or(("", qname));
        let ns = self.resolve(prefix);
        if !prefix.is_empty() && ns.is_none() {
            return Err(self.err(&format!("undeclared namespace prefix '{prefix}'")));
        }
        let mut el = Element {
            ns,
            name: local.to_string(),
            ..Default::default()
        };
        if !empty {
            self.content(&mut el, depth)?;
            self.expect("</")?;
            let end = self.name()?;
            if end != qname {
                return Err(self.err(&format!("</{end}> closes <{qname}>")));
            }
            self.skip_ws();
            self.expect(">")?;
        }
        self.scopes.pop();
        Ok(el)
    }

    fn content(&mut self, el: &mut Element, depth: usize) -> Result<(), XmlError> {
        loop {
            let rest = self.rest();
            let text_len = rest.find('<').unwrap_or(rest.len());
            if text_len > 0 {
                let text = unescape(&rest[..text_len]).map_err(|m| self.err(&m))?;
                el.text.push_str(&text);
                self.pos += text_len;
            }
            let rest = self.rest();
            if rest.is_empty() {
                return Err(self.err(&format!("<{}> is never closed", el.name)));
            } else if rest.starts_with("</") {
                return Ok(());
            } else if rest.starts_with("<!--") {
                self.skip_past("-->", "comment")?;
            } else if rest.starts_with("<![CDATA[") {
                self.pos += "<![CDATA[".len();
                let data = self.skip_past("]]>", "CDATA section")?;
                el.text.push_str(data);
            } else if rest.starts_with("<?") {
                self.skip_past("?>", "processing instruction")?;
            } else if rest.starts_with("<!") {
                return Err(self.err("declarations are not accepted inside elements"));
            } else {
                let child = self.element(depth + 1)?;
                el.children.push(child);
            }
        }
    }
}

/// Replaces the predefined entities and character references; anything else is an error (there is no
/// DTD, so no other entity can exist).
pub fn unescape(raw: &str) -> Result<String, String> {
    if !raw.contains('&') {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        let end = rest
            .find(';')
            .filter(|&e| e <= 10)
            .ok_or("'&' without a ';'-terminated reference")?;
        let entity = &rest[..end];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    return Err(format!("unknown entity '&{entity};'"));
                };
                code.and_then(char::from_u32)
                    .filter(|&c| c != '\0')
                    .ok_or(format!("invalid character reference '&{entity};'"))?
            }
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOAP: &str = r#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">
  <s:Body>
    <u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">
      <NewRemoteHost></NewRemoteHost>
      <NewPortMappingDescription>Cam &amp; &#x263A; <![CDATA[<raw>]]></NewPortMappingDescription>
      <!-- a comment -->
      <NewEnabled/>
    </u:AddPortMapping>
  </s:Body>
</s:Envelope>"#;

    #[test]
    fn reads_a_soap_envelope_with_namespaces() {
        let root = parse(SOAP).unwrap();
        assert_eq!(root.name, "Envelope");
        assert_eq!(
            root.ns.as_deref(),
            Some("http://schemas.xmlsoap.org/soap/envelope/")
        );
        let action = &root.child("Body").unwrap().children[0];
        assert_eq!(action.name, "AddPortMapping");
        assert_eq!(
            action.ns.as_deref(),
            Some("urn:schemas-upnp-org:service:WANIPConnection:1")
        );
        assert_eq!(action.children.len(), 3);
        assert_eq!(action.children[0].ns, None);
        assert_eq!(
            action.child("NewPortMappingDescription").unwrap().text,
            "Cam & \u{263a} <raw>"
        );
        assert_eq!(action.child("NewEnabled").unwrap().text, "");
    }

    #[test]
    fn default_namespace_applies_to_unprefixed_children() {
        let root = parse(r#"<a xmlns="urn:x"><b/><c xmlns=""/></a>"#).unwrap();
        assert_eq!(root.children[0].ns.as_deref(), Some("urn:x"));
        assert_eq!(root.children[1].ns, None);
    }

    #[test]
    fn refuses_what_is_not_well_formed_or_is_hostile() {
        let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
        let wide = format!("<a>{}</a>", "<b/>".repeat(XML_MAX_ELEMENTS + 1));
        let huge = format!("<a>{}</a>", "x".repeat(UPNP_MAX_BODY));
        // 2600 attributes with two-letter names fit in a body: each was checked against all before it.
        let letters: Vec<char> = ('a'..='z').chain('A'..='Z').collect();
        let attributes: String = (0..2600)
            .map(|i| format!(" {}{}=''", letters[i / 50], letters[i % 50]))
            .collect();
        let many = format!("<a{attributes}/>");
        assert!(many.len() <= UPNP_MAX_BODY);
        let cases: &[(&str, &str)] = &[
            ("", "expected the root element"),
            ("<a>", "never closed"),
            ("<a></b>", "closes <a>"),
            ("<a><b></a>", "closes <b>"),
            ("<a/><b/>", "content after the root"),
            ("<a x='1' x='2'/>", "given twice"),
            ("<a x=1/>", "quoted attribute"),
            ("<p:a/>", "undeclared namespace prefix 'p'"),
            ("<a>&bogus;</a>", "unknown entity"),
            ("<a>AT&T</a>", "without a ';'"),
            ("<a>&#0;</a>", "invalid character reference"),
            ("<a>&#xD800;</a>", "invalid character reference"),
            (
                "<!DOCTYPE a [<!ENTITY b \"bb\">]><a>&b;</a>",
                "document type declarations",
            ),
            ("<a><!DOCTYPE x></a>", "declarations are not accepted"),
            ("<a><!-- open</a>", "unterminated comment"),
            (&deep, "nested deeper than 16"),
            (&wide, "more than 256 elements"),
            (&huge, "larger than"),
            (&many, "more than 16 attributes"),
            ("<a x='<'/>", "'<' in an attribute"),
            ("<1a/>", "expected a name"),
        ];
        for (doc, needle) in cases {
            let e = parse(doc).expect_err(doc);
            assert!(
                e.message.contains(needle),
                "{doc:.60}: got '{e}', want '{needle}'"
            );
        }
    }

    #[test]
    fn sixteen_attributes_are_read_and_a_seventeenth_is_refused() {
        let attrs = |n: usize| -> String { (0..n).map(|i| format!(" a{i}='{i}'")).collect() };
        assert!(parse(&format!("<a{}/>", attrs(XML_MAX_ATTRIBUTES))).is_ok());
        let e = parse(&format!("<a{}/>", attrs(XML_MAX_ATTRIBUTES + 1))).unwrap_err();
        assert!(e.message.contains("more than 16 attributes"), "{e}");
    }

    #[test]
    fn billion_laughs_cannot_even_start() {
        let doc = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><lolz>&lol2;</lolz>"#;
        assert!(parse(doc).is_err());
    }

    #[test]
    fn escape_round_trips() {
        let s = "a<b>&\"c'";
        assert_eq!(unescape(&escape(s)).unwrap(), s);
    }
}
