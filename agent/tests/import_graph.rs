//! The crate's layers point one way: a graph of its modules' imports (`crate::…` and `super::…` paths in
//! each file, unit tests left out, a module's own ancestors not counted) has no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path of a source file: `upnp/server.rs` -> `upnp::server`, `net/mod.rs` -> `net`.
fn module_of(rel: &str) -> String {
    let p = rel.trim_end_matches(".rs");
    let p = p.strip_suffix("/mod").unwrap_or(p);
    if p == "lib" || p == "main" {
        String::new()
    } else {
        p.replace('/', "::")
    }
}

fn sources(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, base, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().to_string();
            if !rel.ends_with("tests.rs") {
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
}

/// The module a path names: its longest prefix that is a module.
fn resolve(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|i| parts[..i].join("::"))
        .find(|m| modules.contains(m))
}

/// `word::ident::…` paths after `prefix` in `src`.
fn paths_after<'a>(src: &'a str, prefix: &'a str) -> impl Iterator<Item = String> + 'a {
    src.match_indices(prefix).map(move |(i, _)| {
        src[i + prefix.len()..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == ':')
            .collect::<String>()
            .trim_end_matches(':')
            .to_string()
    })
}

#[test]
fn the_modules_import_each_other_without_cycles() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    sources(&base, &base, &mut files);
    let modules: BTreeSet<String> = files.keys().map(|f| module_of(f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, src) in &files {
        let me = module_of(file);
        let src = src.split("#[cfg(test)]\nmod tests").next().unwrap();
        let parent = me
            .rsplit_once("::")
            .map_or(String::new(), |(p, _)| p.to_string());
        let mut targets: Vec<String> = paths_after(src, "crate::").collect();
        targets.extend(paths_after(src, "super::").map(|p| {
            if parent.is_empty() {
                p
            } else {
                format!("{parent}::{p}")
            }
        }));
        for t in targets {
            let Some(t) = resolve(&t, &modules) else {
                continue;
            };
            if t != me && !me.starts_with(&format!("{t}::")) && !t.is_empty() {
                edges.entry(me.clone()).or_default().insert(t);
            }
        }
    }
    // Depth-first search for a back edge; the cycle it closes is the message.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            return Some(path[i..].to_vec());
        }
        if !done.insert(m.to_string()) {
            return None;
        }
        path.push(m.to_string());
        for next in edges.get(m).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in &modules {
        let mut path = Vec::new();
        if let Some(cycle) = visit(m, &edges, &mut path, &mut done) {
            panic!("import cycle: {} -> {}", cycle.join(" -> "), cycle[0]);
        }
    }
    assert!(
        edges.len() > 20,
        "too few modules with imports found: {edges:?}"
    );
}
