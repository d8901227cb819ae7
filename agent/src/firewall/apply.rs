//! Our tables in the kernel: apply a rendered batch in one nft transaction (the only nft caller), read
//! the tables back (over netlink, `readback.rs`), verify them and fingerprint them so later changes by
//! anyone else are noticed; commit a mapping change as element changes (`elements.rs`); carry the
//! counters over full applies.
//!
//! We run the `nft` binary (OpenWrt's `nftables-json`) ourselves rather than through the nftables
//! crate's helper: the helper does not capture nft's stderr, and that text is what tells the user why the
//! kernel refused a ruleset.

use super::monitor::OwnPids;
use super::render::upnp::{self, ElementChange, ELEMENT_SETS};
use super::render::Tables;
use crate::consts::TABLE;
use crate::netlink::Kept;
use nix::sys::socket::SockProtocol;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// Where nft reads a batch from: its own stdin, by a path that exists on OpenWrt. `nft -f -` opens
/// `/dev/stdin`, and OpenWrt's `/dev` (a tmpfs procd fills with device nodes) has no such link;
/// firewall4's own `/sbin/fw4` falls back to this path for the same reason.
const BATCH_PATH: &str = "/proc/self/fd/0";

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// The nft program could not be started.
    #[error("cannot run {program}: {source} (is the nftables-json package installed?)")]
    NftNotRunnable {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// nft refused the batch; the kernel transaction was not committed, so nothing changed.
    #[error("nft refused the ruleset, nothing was changed: {0}")]
    Rejected(String),
    /// Reading our tables back failed for another reason than their absence.
    #[error("cannot read {0}")]
    ListFailed(String),
    /// nft printed something that is not the JSON we expect.
    #[error("nft printed unreadable JSON: {0}")]
    BadOutput(String),
    /// The table read back differs from what was applied (someone changed it at the same moment).
    #[error("table inet {TABLE} read back differs from what was applied: {0}")]
    VerifyFailed(String),
    /// The kernel refused a mapping change; nothing of it was committed.
    #[error("the kernel refused the mapping change, nothing was changed: {0}")]
    ElementsRefused(nix::errno::Errno),
}

/// Packets and bytes of a named counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub packets: u64,
    pub bytes: u64,
}

/// What the kernel holds after a successful apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// A hash of the table's canonical form (without handles or counter values).
    pub fingerprint: u64,
    /// Why the kernel refused the bridge table, when only the routed one is in force.
    pub bridge_refused: Option<String>,
    /// What was rendered (with the mappings that element changes have made since).
    pub rendered: Rendered,
}

/// What the owner keeps of the tables it put in force, instead of the render itself (whose JSON values
/// take some 180 kB of heap for the smallest config): a digest of the render, which tells an unchanged
/// render, and the mappings' elements, which the drift check compares with the kernel's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    digest: u64,
    elements: Vec<String>,
}

impl Rendered {
    pub fn of(tables: &Tables) -> Self {
        use std::hash::Hasher;
        let mut hasher = std::hash::DefaultHasher::new();
        for cmd in tables.inet.iter().chain(&tables.bridge) {
            // Serialised into the hasher: no copy of the render, no string of it.
            serde_json::to_writer(HashWriter(&mut hasher), cmd).expect("a hasher takes any bytes");
            hasher.write_u8(b'\n');
        }
        Rendered {
            digest: hasher.finish(),
            elements: element_lines(&tables.inet),
        }
    }
}

/// Feeds what is written to a hasher.
struct HashWriter<'a>(&'a mut std::hash::DefaultHasher);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::hash::Hasher::write(self.0, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The state of our table compared with the last applied one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    InForce,
    Missing,
    Changed,
}

pub struct Nft {
    program: PathBuf,
    /// The nft processes started here: the ruleset monitor skips what they commit.
    own: Arc<OwnPids>,
    /// Families of our tables in force (`inet`, and `bridge` when cameras are configured).
    families: Mutex<Vec<String>>,
    /// The socket our tables are read back over (no nft process for that).
    reader: Kept,
    /// Ports whose elements an element change of this process made: their counters have seen every
    /// connection of the mapping. (After a full apply or a restart, conntrack may hold sessions an
    /// element's counter never saw.)
    fresh: Mutex<Vec<u16>>,
    /// What the mappings' element counters had counted when a full apply made them anew (nft cannot
    /// give an element a starting value): added to what the kernel counts since.
    carried: Mutex<BTreeMap<String, Counts>>,
}

impl Nft {
    pub fn new(program: PathBuf) -> Self {
        Nft {
            program,
            own: Arc::default(),
            families: Mutex::new(vec!["inet".to_string()]),
            carried: Mutex::default(),
            reader: Kept::new(SockProtocol::NetlinkNetFilter),
            fresh: Mutex::default(),
        }
    }

    fn run(
        &self,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<(bool, String, String), FirewallError> {
        let not_runnable = |source| FirewallError::NftNotRunnable {
            program: self.program.display().to_string(),
            source,
        };
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(not_runnable)?;
        let pid = child.id();
        self.own.record(pid);
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A write error means nft exited early; its exit status and stderr say why.
            let _ = pipe.write_all(text.as_bytes());
        }
        let out = child.wait_with_output();
        self.own.ended(pid);
        let out = out.map_err(not_runnable)?;
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).trim().to_string();
        Ok((out.status.success(), text(out.stdout), text(out.stderr)))
    }

    /// The pids of the nft processes this runner starts (for the ruleset monitor).
    pub fn own_pids(&self) -> Arc<OwnPids> {
        self.own.clone()
    }

    /// Applies a JSON batch in one nft transaction: all of it, or nothing.
    pub fn apply(&self, batch: &Value) -> Result<(), FirewallError> {
        let (ok, _, err) = self.run(&["-j", "-f", BATCH_PATH], Some(&batch.to_string()))?;
        if ok {
            Ok(())
        } else {
            Err(FirewallError::Rejected(one_line(&err)))
        }
    }

    /// `table FAMILY wilife` read back over netlink; `None` when the table does not exist.
    fn list_family(&self, family: &str) -> Result<Option<Value>, FirewallError> {
        super::readback::read(&self.reader, family)
            .map_err(|e| FirewallError::ListFailed(format!("table {family} {TABLE} back: {e}")))
    }

    /// Our tables of `families` as one listing, and whether every one of them exists.
    fn list_families(&self, families: &[String]) -> Result<(Value, bool), FirewallError> {
        let mut all = Vec::new();
        let mut complete = true;
        for f in families {
            match self.list_family(f)? {
                Some(v) => all.extend(v["nftables"].as_array().cloned().unwrap_or_default()),
                None => complete = false,
            }
        }
        Ok((json!({ "nftables": all }), complete))
    }

    /// Every table we hold now (those of the last applied batch) as one listing; `None` when one of
    /// them does not exist.
    pub fn list_table(&self) -> Result<Option<Value>, FirewallError> {
        let families = self.families.lock().unwrap().clone();
        let (listing, complete) = self.list_families(&families)?;
        Ok(complete.then_some(listing))
    }

    /// Removes our tables (on stop). Absent already is fine.
    pub fn delete_table(&self) -> Result<(), FirewallError> {
        let families = self.families.lock().unwrap().clone();
        self.apply(&json!({ "nftables": delete_commands(&families) }))
    }

    /// Replaces our tables with `tables`. When the kernel refuses the whole and there is a bridge table,
    /// the routed table alone is applied: a kernel without the nftables bridge family (no
    /// kmod-nft-bridge) must not cost the forwards and the routed rules. `Applied::bridge_refused` says
    /// so.
    pub fn replace(&self, tables: &Tables) -> Result<Applied, FirewallError> {
        let rendered = Rendered::of(tables);
        let applied = |fingerprint, bridge_refused| Applied {
            fingerprint,
            bridge_refused,
            rendered: rendered.clone(),
        };
        match self.replace_batch(tables.batch(), &tables.families()) {
            Ok(fingerprint) => Ok(applied(fingerprint, None)),
            Err(e) if !tables.bridge.is_empty() => {
                let routed = tables.without_bridge();
                match self.replace_batch(routed.batch(), &routed.families()) {
                    Ok(fingerprint) => Ok(applied(fingerprint, Some(e.to_string()))),
                    Err(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces our tables with `batch` (which builds those of `new`), carrying named counter values
    /// over, then reads them back and verifies them. The counters in force are read first so a re-apply
    /// keeps them; a table the batch no longer builds (no cameras any more: no bridge table) is deleted
    /// in the same transaction. The fingerprint of what is in force.
    fn replace_batch(&self, mut batch: Value, new: &[String]) -> Result<u64, FirewallError> {
        let old = self.families.lock().unwrap().clone();
        let mut both = old.clone();
        both.extend(new.iter().filter(|f| !old.contains(f)).cloned());
        let (before, _) = self.list_families(&both)?;
        let counted = self.counters(&before);
        with_counter_values(&mut batch, &counted);
        let before_lines = element_entries(commands(&before));
        drop(before);
        let gone: Vec<String> = old.into_iter().filter(|f| !new.contains(f)).collect();
        if let Some(cmds) = batch["nftables"].as_array_mut() {
            cmds.extend(delete_commands(&gone));
        }
        self.apply(&batch)?;
        *self.families.lock().unwrap() = new.to_vec();
        // The mappings' elements start from zero again: what each had counted is carried when the
        // same element (port and host) is made again. None of them is fresh any more.
        let made_again: Vec<String> = element_entries(commands(&batch))
            .into_iter()
            .filter(|(line, _)| before_lines.iter().any(|(l, _)| l == line))
            .filter_map(|(_, name)| name)
            .collect();
        *self.carried.lock().unwrap() = counted
            .into_iter()
            .filter(|(name, _)| made_again.contains(name))
            .collect();
        self.fresh.lock().unwrap().clear();
        let (after, complete) = self.list_families(new)?;
        if !complete {
            return Err(FirewallError::VerifyFailed("a table is missing".into()));
        }
        verify(&batch, &after).map_err(FirewallError::VerifyFailed)?;
        Ok(fingerprint(&after))
    }

    /// Commits a mapping change as element changes, in one netlink transaction and without a process.
    /// `Ok` once the kernel has committed all of it, with the connections each removed mapping had
    /// counted (by external port) where the count is complete (its element was made by an element
    /// change of this process); on an error nothing of it is in force.
    pub fn update(
        &self,
        socket: &Kept,
        change: &ElementChange,
    ) -> Result<Vec<(u16, u64)>, FirewallError> {
        // The generation this commits names this thread: no news for the ruleset monitor.
        let tid = nix::unistd::gettid().as_raw() as u32;
        self.own.record(tid);
        let committed = super::elements::commit(socket, &change.batch);
        self.own.ended(tid);
        let deleted = committed.map_err(FirewallError::ElementsRefused)?;
        let removed = upnp::connections_counted(&deleted);
        let mut fresh = self.fresh.lock().unwrap();
        let counted: Vec<(u16, u64)> = removed
            .iter()
            .filter(|(port, _)| fresh.contains(port))
            .copied()
            .collect();
        fresh.retain(|p| !removed.iter().any(|(gone, _)| gone == p));
        fresh.extend(&change.added);
        let mut carried = self.carried.lock().unwrap();
        for name in &change.forgotten {
            carried.remove(name);
        }
        Ok(counted)
    }

    /// Every counter of a listing of our tables: the named ones, and the mappings' element counters
    /// under the names a forward's counters have, with what they had counted before the last full
    /// apply.
    pub fn counters(&self, listing: &Value) -> BTreeMap<String, Counts> {
        let mut all = counters(listing);
        let carried = self.carried.lock().unwrap();
        for (name, mut counts) in element_counters(listing) {
            if let Some(before) = carried.get(&name) {
                counts.packets += before.packets;
                counts.bytes += before.bytes;
            }
            all.insert(name, counts);
        }
        all
    }

    /// Compares the tables in the kernel with the last applied fingerprint and the mappings rendered
    /// (which element changes keep up to date between full applies).
    pub fn drift(&self, applied: &Applied) -> Result<Drift, FirewallError> {
        Ok(match self.list_table()? {
            None => Drift::Missing,
            Some(t)
                if fingerprint(&t) != applied.fingerprint
                    || element_lines(commands(&t)) != applied.rendered.elements =>
            {
                Drift::Changed
            }
            Some(_) => Drift::InForce,
        })
    }

    /// Does fw4's live forward chain accept flows carrying `bit` (our include)? `None`: no fw4 table.
    pub fn fw4_accepts(&self, bit: u32) -> Result<Option<bool>, FirewallError> {
        let (ok, out, err) = self.run(&["-j", "list", "chain", "inet", "fw4", "forward"], None)?;
        if !ok {
            if err.contains("No such file or directory") {
                return Ok(None);
            }
            return Err(FirewallError::ListFailed(format!(
                "fw4's forward chain: {}",
                one_line(&err)
            )));
        }
        let listing: Value =
            serde_json::from_str(&out).map_err(|e| FirewallError::BadOutput(e.to_string()))?;
        let accepts = objects(&listing)
            .filter(|(k, _)| k.as_str() == "rule")
            .any(|(_, r)| accepts_mark(r, bit));
        Ok(Some(accepts))
    }
}

/// `ct mark & BIT == BIT … accept`
fn accepts_mark(rule: &Value, bit: u32) -> bool {
    let stmts = rule["expr"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let matches_bit = stmts.iter().any(|s| {
        let m = &s["match"];
        m["op"] == "=="
            && m["right"] == bit
            && m["left"]["&"][0]["ct"]["key"] == "mark"
            && m["left"]["&"][1] == bit
    });
    matches_bit && stmts.iter().any(|s| s.get("accept").is_some())
}

/// `add table F wilife; delete table F wilife` per family: deletes whether or not it exists.
fn delete_commands(families: &[String]) -> Vec<Value> {
    families
        .iter()
        .flat_map(|f| {
            let table = json!({"table": {"family": f, "name": TABLE}});
            [json!({"add": table.clone()}), json!({"delete": table})]
        })
        .collect()
}

fn one_line(s: &str) -> String {
    let joined: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut t = joined.join(" | ");
    if t.is_empty() {
        t = "nft failed without a message".into();
    }
    t.truncate(2000);
    t
}

fn objects(listing: &Value) -> impl Iterator<Item = (&String, &Value)> {
    objects_in(commands(listing))
}

/// The commands of a batch, or the objects of a listing.
fn commands(doc: &Value) -> &[Value] {
    doc["nftables"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn objects_in(commands: &[Value]) -> impl Iterator<Item = (&String, &Value)> {
    commands
        .iter()
        .filter_map(|o| o.as_object())
        .filter_map(|o| o.iter().next())
}

/// The objects of a listing, or those a batch adds.
fn objects_or_added(commands: &[Value]) -> impl Iterator<Item = (&String, &Value)> {
    objects_in(commands).map(|(k, v)| match k.as_str() {
        "add" => v
            .as_object()
            .and_then(|o| o.iter().next())
            .unwrap_or((k, v)),
        _ => (k, v),
    })
}

/// The sets and maps of `table inet wilife` that hold the mappings, with their elements.
fn element_sets(commands: &[Value]) -> impl Iterator<Item = (&str, &Vec<Value>)> {
    objects_or_added(commands)
        .filter(|(k, v)| {
            matches!(k.as_str(), "set" | "map")
                && v["family"] == "inet"
                && ELEMENT_SETS.contains(&v["name"].as_str().unwrap_or(""))
        })
        .filter_map(|(_, v)| Some((v["name"].as_str()?, v["elem"].as_array()?)))
}

/// An element's key: nft lists it wrapped with its counter (`{"elem": {"val": KEY, "counter": …}}`).
fn element_key(e: &Value) -> &Value {
    e.pointer("/elem/val").unwrap_or(e)
}

/// The mappings' elements of a batch or a listing: each one's line (`upnp_addr 20570 :
/// "192.168.1.10"`) and the counter name it counts under, if it counts.
fn element_entries(commands: &[Value]) -> Vec<(String, Option<String>)> {
    element_sets(commands)
        .flat_map(|(name, elems)| {
            elems.iter().map(move |e| {
                let (line, key) = match e.as_array() {
                    Some(pair) if pair.len() == 2 => {
                        let key = element_key(&pair[0]);
                        (format!("{name} {key} : {}", pair[1]), key)
                    }
                    _ => (format!("{name} {}", element_key(e)), element_key(e)),
                };
                (line, upnp::counter_name(name, key))
            })
        })
        .collect()
}

/// The mappings' elements of a batch or a listing, one line each, sorted: equal exactly when the
/// kernel holds the mappings the batch holds.
fn element_lines(commands: &[Value]) -> Vec<String> {
    let mut lines: Vec<String> = element_entries(commands)
        .into_iter()
        .map(|(l, _)| l)
        .collect();
    lines.sort();
    lines
}

/// The mappings' element counters of a listing, under the names a forward's counters have.
fn element_counters(listing: &Value) -> BTreeMap<String, Counts> {
    let mut out = BTreeMap::new();
    for (name, elems) in element_sets(commands(listing)) {
        for e in elems {
            let wrapped = e.as_array().and_then(|p| p.first()).unwrap_or(e);
            let (Some(counter), Some(counts)) = (
                upnp::counter_name(name, element_key(wrapped)),
                wrapped.pointer("/elem/counter"),
            ) else {
                continue;
            };
            let counts = Counts {
                packets: counts["packets"].as_u64().unwrap_or(0),
                bytes: counts["bytes"].as_u64().unwrap_or(0),
            };
            out.insert(counter, counts);
        }
    }
    out
}

/// Named counters of a listing.
fn counters(listing: &Value) -> BTreeMap<String, Counts> {
    objects(listing)
        .filter(|(k, _)| k.as_str() == "counter")
        .map(|(_, c)| {
            let counts = Counts {
                packets: c["packets"].as_u64().unwrap_or(0),
                bytes: c["bytes"].as_u64().unwrap_or(0),
            };
            (c["name"].as_str().unwrap_or("").to_string(), counts)
        })
        .collect()
}

/// Sets the initial values of the batch's `add counter` commands (u64: bytes outgrow 32 bits).
fn with_counter_values(batch: &mut Value, values: &BTreeMap<String, Counts>) {
    for cmd in batch["nftables"].as_array_mut().into_iter().flatten() {
        if let Some(c) = cmd.pointer_mut("/add/counter") {
            let v = c["name"]
                .as_str()
                .and_then(|n| values.get(n))
                .copied()
                .unwrap_or_default();
            c["packets"] = v.packets.into();
            c["bytes"] = v.bytes.into();
        }
    }
}

/// A hash of the table without what changes on its own (handles, counter values, the mappings'
/// elements, which `element_lines` compares) and nft's metainfo. Only compared for equality; a hash
/// keeps no copy of the table in memory.
pub fn fingerprint(listing: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    for (kind, body) in objects(listing) {
        if kind == "metainfo" {
            continue;
        }
        let mut body = body.clone();
        let mappings = ELEMENT_SETS.contains(&body["name"].as_str().unwrap_or(""));
        if let Some(o) = body.as_object_mut() {
            o.remove("handle");
            if kind == "counter" {
                o.remove("packets");
                o.remove("bytes");
            }
            if matches!(kind.as_str(), "set" | "map") && mappings {
                o.remove("elem");
            }
        }
        (kind, body.to_string()).hash(&mut hasher);
    }
    hasher.finish()
}

/// What we check after an apply: the chains with their hooks, each chain's rules in order (by the comment
/// every rule of ours carries), the counters, and the sets with their element counts.
fn summary_of_batch(batch: &Value) -> Vec<String> {
    let mut items = Vec::new();
    for cmd in batch["nftables"].as_array().into_iter().flatten() {
        if let Some(obj) = cmd.get("add").and_then(|o| o.as_object()) {
            if let Some((k, v)) = obj.iter().next() {
                items.extend(summary_item(k, v));
            }
        }
    }
    items.sort();
    items
}

fn summary_of_listing(listing: &Value) -> Vec<String> {
    let mut items: Vec<String> = objects(listing)
        .flat_map(|(k, v)| summary_item(k, v))
        .collect();
    items.sort();
    items
}

fn summary_item(kind: &str, v: &Value) -> Option<String> {
    let name = format!(
        "{} {}",
        v["family"].as_str().unwrap_or(""),
        v["name"].as_str().unwrap_or("")
    );
    match kind {
        "chain" => Some(format!(
            "chain {name} {} {} {} {}",
            v["type"], v["hook"], v["prio"], v["policy"]
        )),
        "counter" => Some(format!("counter {name}")),
        "set" | "map" => Some(format!(
            "{kind} {name} {}",
            v["elem"].as_array().map(|e| e.len()).unwrap_or(0)
        )),
        // Rules are compared per chain and in order: the comment says which rule it is.
        "rule" => Some(format!(
            "rule {} {} {}",
            v["family"].as_str().unwrap_or(""),
            v["chain"].as_str().unwrap_or(""),
            v["comment"]
        )),
        _ => None,
    }
}

fn verify(batch: &Value, listing: &Value) -> Result<(), String> {
    let want = summary_of_batch(batch);
    let got = summary_of_listing(listing);
    if want == got {
        return rule_order(batch, listing);
    }
    let missing: Vec<&String> = want.iter().filter(|w| !got.contains(w)).collect();
    let extra: Vec<&String> = got.iter().filter(|g| !want.contains(g)).collect();
    Err(format!("missing {missing:?}, unexpected {extra:?}"))
}

fn rule_order(batch: &Value, listing: &Value) -> Result<(), String> {
    let in_chain = |rules: &[&Value], family: &Value, chain: &Value| -> Vec<String> {
        rules
            .iter()
            .filter(|r| r["family"] == *family && r["chain"] == *chain)
            .map(|r| r["comment"].to_string())
            .collect()
    };
    let batch_rules: Vec<&Value> = batch["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.pointer("/add/rule"))
        .collect();
    let listed_rules: Vec<&Value> = objects(listing)
        .filter(|(k, _)| k.as_str() == "rule")
        .map(|(_, v)| v)
        .collect();
    let mut chains: Vec<(&Value, &Value)> = batch_rules
        .iter()
        .map(|r| (&r["family"], &r["chain"]))
        .collect();
    chains.dedup();
    for (family, chain) in chains {
        if in_chain(&batch_rules, family, chain) != in_chain(&listed_rules, family, chain) {
            return Err(format!("rules of chain {family} {chain} are out of order"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_ignores_handles_and_counter_values_only() {
        let a = json!({"nftables": [
            {"metainfo": {"version": "1"}},
            {"counter": {"family": "inet", "table": "wilife", "name": "c", "handle": 3, "packets": 1, "bytes": 2}},
            {"rule": {"family": "inet", "table": "wilife", "chain": "forward", "handle": 9, "expr": [{"drop": null}]}}
        ]});
        let mut b = a.clone();
        b["nftables"][1]["counter"]["packets"] = 99.into();
        b["nftables"][1]["counter"]["handle"] = 7.into();
        b["nftables"][2]["rule"]["handle"] = 11.into();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b["nftables"][2]["rule"]["expr"] = json!([{"accept": null}]);
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn what_is_kept_of_a_render_tells_any_change_of_rule_or_mapping() {
        let tables = |rule: &str, mapped: &str| Tables {
            inet: vec![
                json!({"add": {"map": {"family": "inet", "name": "upnp_addr", "elem": [[20570, mapped]]}}}),
                json!({"add": {"rule": {"family": "inet", "chain": "forward", "comment": rule}}}),
            ],
            bridge: Vec::new(),
        };
        let kept = Rendered::of(&tables("a", "192.168.1.10"));
        assert_eq!(kept, Rendered::of(&tables("a", "192.168.1.10")));
        assert_eq!(kept.elements, ["upnp_addr 20570 : \"192.168.1.10\""]);
        assert_ne!(kept, Rendered::of(&tables("b", "192.168.1.10")));
        let moved = Rendered::of(&tables("a", "192.168.1.11"));
        assert_ne!(kept.digest, moved.digest);
        assert_ne!(kept.elements, moved.elements);
        let mut bridged = tables("a", "192.168.1.10");
        bridged.bridge = vec![json!({"add": {"table": {"family": "bridge"}}})];
        assert_ne!(kept, Rendered::of(&bridged));
    }

    #[test]
    fn counter_values_are_carried_as_u64() {
        let mut batch = json!({"nftables": [{"add": {"counter": {"name": "c"}}}, {"add": {"counter": {"name": "new"}}}]});
        let values = BTreeMap::from([(
            "c".to_string(),
            Counts {
                packets: 7,
                bytes: 5_000_000_000,
            },
        )]);
        with_counter_values(&mut batch, &values);
        assert_eq!(
            batch["nftables"][0]["add"]["counter"]["bytes"],
            5_000_000_000u64
        );
        assert_eq!(batch["nftables"][1]["add"]["counter"]["packets"], 0);
    }

    #[test]
    fn mapping_elements_read_alike_in_a_batch_and_a_listing_and_count_under_forward_names() {
        let batch = json!({"nftables": [
            {"add": {"map": {"family": "inet", "name": "upnp_addr", "elem": [[20570, "192.168.1.10"]]}}},
            {"add": {"set": {"family": "inet", "name": "upnp_granted", "elem": [{"concat": [20570, "192.168.1.10"]}]}}},
            {"add": {"set": {"family": "inet", "name": "cc_ipv4", "elem": ["192.168.1.10"]}}}
        ]});
        let listing = json!({"nftables": [
            {"map": {"family": "inet", "name": "upnp_addr", "elem": [
                [{"elem": {"val": 20570, "counter": {"packets": 3, "bytes": 180}}}, "192.168.1.10"]
            ]}},
            {"set": {"family": "inet", "name": "upnp_granted", "elem": [
                {"elem": {"val": {"concat": [20570, "192.168.1.10"]}, "counter": {"packets": 9, "bytes": 900}}}
            ]}},
            {"set": {"family": "inet", "name": "cc_ipv4", "elem": ["192.168.1.10"]}}
        ]});
        assert_eq!(
            element_lines(commands(&batch)),
            element_lines(commands(&listing))
        );
        assert_eq!(
            element_lines(commands(&listing)).len(),
            2,
            "only the mappings' sets"
        );
        let counted = element_counters(&listing);
        assert_eq!(
            counted["fwd_tcp_20570_conns"],
            Counts {
                packets: 3,
                bytes: 180
            }
        );
        assert_eq!(counted["fwd_tcp_20570"].bytes, 900);
        // The fingerprint leaves the mappings to the element comparison; other sets stay in it.
        let mut fewer = listing.clone();
        fewer["nftables"][0]["map"]["elem"] = json!([]);
        assert_eq!(fingerprint(&listing), fingerprint(&fewer));
        assert_ne!(
            element_lines(commands(&listing)),
            element_lines(commands(&fewer))
        );
        fewer["nftables"][2]["set"]["elem"] = json!([]);
        assert_ne!(fingerprint(&listing), fingerprint(&fewer));
    }

    #[test]
    fn nft_messages_become_one_line() {
        assert_eq!(one_line("Error: x\n  ^^^\n\n"), "Error: x | ^^^");
        assert_eq!(one_line(""), "nft failed without a message");
    }
}
