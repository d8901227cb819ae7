//! The batch as readable nft text, in the layout `nft list table inet wilife` prints, so a user (and the
//! golden tests) can read exactly what will be applied. It covers the expressions the renderer emits; an
//! unknown one is printed as its JSON, never dropped. A test proves the kernel lists the same text.

use serde_json::Value;
use std::fmt::Write;

/// Renders the `add` commands of a batch as one `table FAMILY wilife { … }` block per table, in the
/// order the batch builds them.
pub fn to_text(batch: &Value) -> String {
    let empty = Vec::new();
    let mut tables: Vec<Table> = Vec::new();
    for cmd in batch["nftables"].as_array().unwrap_or(&empty) {
        let Some(obj) = cmd.get("add") else { continue };
        let Some((kind, body)) = obj.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let family = s(&body["family"]);
        let table = if kind == "table" {
            s(&body["name"])
        } else {
            s(&body["table"])
        };
        let i = match tables
            .iter()
            .position(|t| t.family == family && t.name == table)
        {
            Some(i) => i,
            None => {
                tables.push(Table {
                    family: family.to_string(),
                    name: table.to_string(),
                    ..Default::default()
                });
                tables.len() - 1
            }
        };
        let t = &mut tables[i];
        match kind.as_str() {
            "counter" => t.counters.push(body),
            "set" | "map" => t.sets.push(body),
            "chain" => t.chains.push((body, Vec::new())),
            "rule" => {
                if let Some(entry) = t
                    .chains
                    .iter_mut()
                    .find(|(c, _)| c["name"] == body["chain"])
                {
                    entry.1.push(body);
                }
            }
            _ => {}
        }
    }
    tables.iter().map(table_text).collect()
}

#[derive(Default)]
struct Table<'a> {
    family: String,
    name: String,
    counters: Vec<&'a Value>,
    sets: Vec<&'a Value>,
    chains: Vec<(&'a Value, Vec<&'a Value>)>,
}

fn table_text(t: &Table) -> String {
    let empty = Vec::new();
    let mut blocks = Vec::new();
    for c in &t.counters {
        blocks.push(format!(
            "\tcounter {} {{\n\t\tpackets {} bytes {}\n\t}}\n",
            s(&c["name"]),
            c["packets"].as_u64().unwrap_or(0),
            c["bytes"].as_u64().unwrap_or(0)
        ));
    }
    for set in &t.sets {
        // A map has the type of its values too.
        let (kind, ty) = match set.get("map") {
            Some(data) => (
                "map",
                format!("{} : {}", set_type(&set["type"]), set_type(data)),
            ),
            None => ("set", set_type(&set["type"])),
        };
        let mut b = format!("\t{kind} {} {{\n\t\ttype {ty}\n", s(&set["name"]));
        if let Some(flags) = set["flags"].as_array() {
            let f: Vec<&str> = flags.iter().map(s).collect();
            let _ = writeln!(b, "\t\tflags {}", f.join(","));
        }
        // Each element of a counting set has its own counter, listed with it.
        let counted = set["stmt"]
            .as_array()
            .is_some_and(|st| st.iter().any(|x| x.get("counter").is_some()));
        if counted {
            b.push_str("\t\tcounter\n");
        }
        if let Some(elem) = set["elem"].as_array() {
            let per_line = elements_per_line(&set["type"]);
            let mut line = String::new();
            for (i, e) in elem.iter().enumerate() {
                if i > 0 {
                    line.push_str(if i % per_line == 0 {
                        ",\n\t\t\t     "
                    } else {
                        ", "
                    });
                }
                line.push_str(&element(e, counted));
            }
            let _ = writeln!(b, "\t\telements = {{ {line} }}");
        }
        b.push_str("\t}\n");
        blocks.push(b);
    }
    for (c, rules) in &t.chains {
        let mut b = format!("\tchain {} {{\n", s(&c["name"]));
        if let Some(ty) = c["type"].as_str() {
            let hook = s(&c["hook"]);
            let prio = c["prio"].as_i64().unwrap_or(0);
            let _ = writeln!(
                b,
                "\t\ttype {ty} hook {hook} priority {}; policy {};",
                priority(&t.family, ty, hook, prio),
                c["policy"].as_str().unwrap_or("accept")
            );
        }
        for r in rules {
            let stmts: Vec<String> = r["expr"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(statement)
                .collect();
            let mut line = stmts.join(" ");
            if let Some(cm) = r["comment"].as_str() {
                let _ = write!(line, " comment {}", quote(cm));
            }
            let _ = writeln!(b, "\t\t{line}");
        }
        b.push_str("\t}\n");
        blocks.push(b);
    }
    format!(
        "table {} {} {{\n{}}}\n",
        t.family,
        t.name,
        blocks.join("\n")
    )
}

/// A set element (`key`, or `key : value` in a map) with its counter, as nft lists a new one.
fn element(e: &Value, counted: bool) -> String {
    let counter = if counted {
        " counter packets 0 bytes 0"
    } else {
        ""
    };
    match e.as_array() {
        Some(pair) if pair.len() == 2 => format!(
            "{}{counter} : {}",
            expr(&pair[0], false),
            expr(&pair[1], false)
        ),
        _ => format!("{}{counter}", expr(e, false)),
    }
}

/// nft wraps named-set elements by type: 5 per line for small integers (ports, protocols), 2 for
/// addresses and interface names, 1 for anything wider (MACs, concatenations).
fn elements_per_line(set_type: &Value) -> usize {
    match set_type.as_str() {
        Some("inet_service" | "inet_proto" | "mark") => 5,
        Some("ipv4_addr" | "ipv6_addr" | "ifname") => 2,
        _ => 1,
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn quote(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

fn set_type(v: &Value) -> String {
    match v.as_array() {
        Some(parts) => parts.iter().map(s).collect::<Vec<_>>().join(" . "),
        None => s(v).to_string(),
    }
}

/// nft prints standard priorities by name (`dstnat - 10`; the bridge family's filter is -200), but
/// a nat output hook's in numbers (`-110`).
fn priority(family: &str, ty: &str, hook: &str, prio: i64) -> String {
    let base = match (family, ty, hook) {
        ("bridge", _, _) => ("filter", -200),
        (_, "nat", "output") => return prio.to_string(),
        (_, "nat", "prerouting") => ("dstnat", -100),
        (_, "nat", "postrouting") | (_, "nat", "input") => ("srcnat", 100),
        _ => ("filter", 0),
    };
    match prio - base.1 {
        0 => base.0.to_string(),
        d if d < 0 => format!("{} - {}", base.0, -d),
        d => format!("{} + {}", base.0, d),
    }
}

/// Does this expression carry a mark (printed in hex, as nft does)?
fn is_mark(v: &Value) -> bool {
    v.get("ct").is_some_and(|c| c["key"] == "mark")
        || v.get("meta").is_some_and(|m| m["key"] == "mark")
}

fn expr(v: &Value, hex: bool) -> String {
    match v {
        Value::String(t) => t.clone(),
        Value::Number(n) if hex => format!("0x{:08x}", n.as_u64().unwrap_or(0)),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        // Flags: `established,related`.
        Value::Array(items) => items
            .iter()
            .map(|e| expr(e, hex))
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(o) => {
            if let Some(m) = o.get("meta") {
                let key = s(&m["key"]);
                match key {
                    "iifname" | "oifname" | "iif" | "oif" => key.to_string(),
                    _ => format!("meta {key}"),
                }
            } else if let Some(p) = o.get("payload") {
                format!("{} {}", s(&p["protocol"]), s(&p["field"]))
            } else if let Some(c) = o.get("ct") {
                match c["dir"].as_str() {
                    Some(dir) => format!("ct {dir} {}", s(&c["key"])),
                    None => format!("ct {}", s(&c["key"])),
                }
            } else if let Some(m) = o.get("map") {
                format!("{} map {}", expr(&m["key"], false), expr(&m["data"], false))
            } else if let Some(r) = o.get("range") {
                format!("{}-{}", expr(&r[0], hex), expr(&r[1], hex))
            } else if let Some(p) = o.get("prefix") {
                format!("{}/{}", expr(&p["addr"], false), p["len"])
            } else if let Some(c) = o.get("concat") {
                let parts: Vec<String> = c
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| expr(e, false))
                    .collect();
                parts.join(" . ")
            } else if let Some(set) = o.get("set") {
                let items: Vec<String> = set
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| expr(e, hex))
                    .collect();
                format!("{{ {} }}", items.join(", "))
            } else if let Some(a) = o.get("&") {
                format!("{} & {}", expr(&a[0], false), expr(&a[1], is_mark(&a[0])))
            } else if let Some(a) = o.get("|") {
                let first_mark = a.get(0).is_some_and(is_mark);
                let parts: Vec<String> = a
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| expr(e, first_mark && !e.is_object()))
                    .collect();
                parts.join(" | ")
            } else {
                v.to_string()
            }
        }
        other => other.to_string(),
    }
}

/// Right-hand values of interface-name matches are quoted, as nft prints them.
fn right(left: &Value, r: &Value) -> String {
    let ifname = left
        .get("meta")
        .is_some_and(|m| matches!(s(&m["key"]), "iifname" | "oifname"));
    let hex = is_mark(left) || left.get("&").is_some_and(|a| is_mark(&a[0]));
    match r {
        Value::String(t) if ifname => quote(t),
        Value::Object(o) if ifname && o.contains_key("set") => {
            let items: Vec<String> = o["set"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| quote(s(e)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
        _ => expr(r, hex),
    }
}

fn statement(v: &Value) -> String {
    let Some((kind, body)) = v.as_object().and_then(|o| o.iter().next()) else {
        return v.to_string();
    };
    match kind.as_str() {
        "match" => {
            let left = &body["left"];
            let l = expr(left, false);
            let r = right(left, &body["right"]);
            // `tcp flags & (syn | ack) != syn` is listed as `tcp flags != syn / syn,ack`.
            if let Some(mask) = left.get("&").and_then(|a| a[1].as_array()) {
                let field = expr(&left["&"][0], false);
                let bits: Vec<&str> = mask.iter().map(s).collect();
                let op = match s(&body["op"]) {
                    "!=" => "!= ",
                    _ => "",
                };
                return format!("{field} {op}{r} / {}", bits.join(","));
            }
            match s(&body["op"]) {
                "!=" => format!("{l} != {r}"),
                // nft prints `==` explicitly after a bitwise expression.
                "==" if left.get("&").is_some() => format!("{l} == {r}"),
                "==" | "in" => format!("{l} {r}"),
                op => format!("{l} {op} {r}"),
            }
        }
        "counter" => match body {
            Value::String(name) => format!("counter name {}", quote(name)),
            _ => "counter".to_string(),
        },
        "mangle" => format!(
            "{} set {}",
            expr(&body["key"], false),
            expr(&body["value"], is_mark(&body["key"]))
        ),
        "dnat" | "snat" => {
            let mut t = kind.clone();
            if let Some(fam) = body["family"].as_str() {
                let _ = write!(t, " {fam}");
            }
            if let Some(addr) = body.get("addr") {
                let _ = write!(t, " to {}", expr(addr, false));
                if let Some(port) = body.get("port") {
                    let _ = write!(t, ":{}", expr(port, false));
                }
            }
            t
        }
        "masquerade" | "accept" | "drop" | "return" => kind.clone(),
        "jump" | "goto" => format!("{kind} {}", s(&body["target"])),
        "vmap" => {
            let entries: Vec<String> = body["data"]["set"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|pair| format!("{} : {}", expr(&pair[0], false), statement(&pair[1])))
                .collect();
            format!(
                "{} vmap {{ {} }}",
                expr(&body["key"], false),
                entries.join(", ")
            )
        }
        _ => v.to_string(),
    }
}
