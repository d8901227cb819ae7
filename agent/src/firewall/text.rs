//! The batch as readable nft text, in the layout `nft list table inet wilife` prints, so a user (and the
//! golden tests) can read exactly what will be applied. It covers the expressions the renderer emits; an
//! unknown one is printed as its JSON, never dropped. A test proves the kernel lists the same text.

use serde_json::Value;
use std::fmt::Write;

/// Renders the `add` commands of a batch as one `table inet wilife { … }` block.
pub fn to_text(batch: &Value) -> String {
    let mut counters = Vec::new();
    let mut sets = Vec::new();
    let mut chains: Vec<(&Value, Vec<&Value>)> = Vec::new();
    let mut table = ("inet".to_string(), crate::consts::TABLE.to_string());
    let empty = Vec::new();
    for cmd in batch["nftables"].as_array().unwrap_or(&empty) {
        let Some(obj) = cmd.get("add") else { continue };
        if let Some(t) = obj.get("table") {
            table = (s(&t["family"]).to_string(), s(&t["name"]).to_string());
        } else if let Some(c) = obj.get("counter") {
            counters.push(c);
        } else if let Some(set) = obj.get("set") {
            sets.push(set);
        } else if let Some(c) = obj.get("chain") {
            chains.push((c, Vec::new()));
        } else if let Some(r) = obj.get("rule") {
            if let Some(entry) = chains.iter_mut().find(|(c, _)| c["name"] == r["chain"]) {
                entry.1.push(r);
            }
        }
    }
    let mut blocks = Vec::new();
    for c in counters {
        blocks.push(format!(
            "\tcounter {} {{\n\t\tpackets {} bytes {}\n\t}}\n",
            s(&c["name"]),
            c["packets"].as_u64().unwrap_or(0),
            c["bytes"].as_u64().unwrap_or(0)
        ));
    }
    for set in sets {
        let mut b = format!(
            "\tset {} {{\n\t\ttype {}\n",
            s(&set["name"]),
            set_type(&set["type"])
        );
        if let Some(flags) = set["flags"].as_array() {
            let f: Vec<&str> = flags.iter().map(s).collect();
            let _ = writeln!(b, "\t\tflags {}", f.join(","));
        }
        if let Some(elem) = set["elem"].as_array() {
            let e: Vec<String> = elem.iter().map(|e| expr(e, false)).collect();
            // nft puts each concatenated element on its own line, aligned after `elements = { `.
            let sep = if set["type"].is_array() {
                ",\n\t\t\t     "
            } else {
                ", "
            };
            let _ = writeln!(b, "\t\telements = {{ {} }}", e.join(sep));
        }
        b.push_str("\t}\n");
        blocks.push(b);
    }
    for (c, rules) in chains {
        let mut b = format!("\tchain {} {{\n", s(&c["name"]));
        if let Some(ty) = c["type"].as_str() {
            let hook = s(&c["hook"]);
            let prio = c["prio"].as_i64().unwrap_or(0);
            let _ = writeln!(
                b,
                "\t\ttype {ty} hook {hook} priority {}; policy {};",
                priority(ty, hook, prio),
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
        table.0,
        table.1,
        blocks.join("\n")
    )
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

/// nft prints standard priorities by name (`dstnat - 10`).
fn priority(ty: &str, hook: &str, prio: i64) -> String {
    let base = match (ty, hook) {
        ("nat", "prerouting") | ("nat", "output") => ("dstnat", -100),
        ("nat", "postrouting") | ("nat", "input") => ("srcnat", 100),
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
        Value::Object(o) => {
            if let Some(m) = o.get("meta") {
                let key = s(&m["key"]);
                match key {
                    "iifname" | "oifname" | "iif" | "oif" | "mark" => key.to_string(),
                    _ => format!("meta {key}"),
                }
            } else if let Some(p) = o.get("payload") {
                format!("{} {}", s(&p["protocol"]), s(&p["field"]))
            } else if let Some(c) = o.get("ct") {
                match c["dir"].as_str() {
                    Some(dir) => format!("ct {dir} {}", s(&c["key"])),
                    None => format!("ct {}", s(&c["key"])),
                }
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
        _ => v.to_string(),
    }
}
