//! A package as values, and the bytes of its `.apk` (apk-v3(5), apk-package(5)). Pure: the tree is read
//! elsewhere (`tree.rs`); here it is checked and encoded.

use crate::adb::{self, Block, Heap, Val};
use crate::depend::Dependency;
use crate::schema::{self, acl, dependency, dir, file, info, package};
use sha2::{Digest, Sha256};

/// What `apk info` shows of a package.
#[derive(Clone, Debug, Default)]
pub struct Info {
    pub name: String,
    /// `VERSION-rRELEASE`, in apk's version syntax.
    pub version: String,
    pub description: String,
    /// The package architecture the router accepts (`apk --print-arch`), or `noarch`.
    pub arch: String,
    pub license: String,
    pub origin: String,
    pub maintainer: String,
    pub url: String,
    pub depends: Vec<Dependency>,
    pub build_time: Option<u64>,
}

/// One directory: its path relative to the root (`""` for the root itself, `usr/sbin`), and the files
/// directly inside it. Every owner is root, as OpenWrt builds its packages under fakeroot.
#[derive(Clone, Debug)]
pub struct Dir {
    pub path: String,
    pub mode: u32,
    pub files: Vec<File>,
}

#[derive(Clone, Debug)]
pub struct File {
    pub name: String,
    pub mode: u32,
    pub mtime: u64,
    pub content: Content,
}

#[derive(Clone, Debug)]
pub enum Content {
    Bytes(Vec<u8>),
    Symlink(String),
}

#[derive(Clone, Debug)]
pub struct Package {
    pub info: Info,
    /// Sorted by path, as apk writes them (a parent before its children).
    pub dirs: Vec<Dir>,
    /// Maintainer scripts by apk's names (`post-install`, ...), whole texts.
    pub scripts: Vec<(String, Vec<u8>)>,
}

/// A package apk could not install as meant.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn invalid<T>(what: String) -> Result<T, Invalid> {
    Err(Invalid(what))
}

impl Package {
    /// Refuses what apk would refuse or do differently from what the package says.
    pub fn check(&self) -> Result<(), Invalid> {
        let i = &self.info;
        if i.name.is_empty()
            || !i.name.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !i
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+._-".contains(c))
        {
            return invalid(format!("name {:?}: not a package name", i.name));
        }
        if !valid_version(&i.version) {
            return invalid(format!(
                "version {:?}: not apk's version syntax (e.g. 1.2.3-r1)",
                i.version
            ));
        }
        if i.arch.is_empty()
            || !i
                .arch
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
        {
            return invalid(format!("arch {:?}: not an architecture name", i.arch));
        }
        for d in &self.dirs {
            check_path(&d.path)?;
            check_mode(&d.path, d.mode)?;
            for f in &d.files {
                let shown = join(&d.path, &f.name);
                if f.name.is_empty() || f.name.contains('/') || f.name == "." || f.name == ".." {
                    return invalid(format!("file name {:?} in {:?}", f.name, d.path));
                }
                check_name_bytes(&shown)?;
                check_mode(&shown, f.mode)?;
            }
            if !d.files.windows(2).all(|w| w[0].name < w[1].name) {
                return invalid(format!("files of {:?}: not sorted or repeated", d.path));
            }
        }
        if !self.dirs.windows(2).all(|w| w[0].path < w[1].path) {
            return invalid("directories: not sorted or repeated".into());
        }
        // Every directory's parent is listed, so that apk creates none with a mode of its choosing.
        for d in self.dirs.iter().filter(|d| !d.path.is_empty()) {
            let parent = d.path.rsplit_once('/').map_or("", |(p, _)| p);
            if !self.dirs.iter().any(|p| p.path == parent) {
                return invalid(format!("directory {:?} has no parent entry", d.path));
            }
        }
        for (i, (name, text)) in self.scripts.iter().enumerate() {
            if !schema::SCRIPTS.contains(&name.as_str()) {
                return invalid(format!("script {name:?}: apk knows {:?}", schema::SCRIPTS));
            }
            if self.scripts[..i].iter().any(|(n, _)| n == name) {
                return invalid(format!("script {name:?} given twice"));
            }
            // apk executes a script directly: without an interpreter line it cannot run.
            if !text.starts_with(b"#!") {
                return invalid(format!("script {name:?} does not start with #!"));
            }
        }
        Ok(())
    }

    /// The bytes of the uncompressed `.apk` (magic "ADB."): the ADB block, then one DATA block for
    /// every non-empty regular file in tree order.
    pub fn encode(&self) -> Result<Vec<u8>, Invalid> {
        self.check()?;
        let adb = self.metadata()?;
        let mut out = Vec::with_capacity(adb.len() + self.installed_size() as usize + 1024);
        out.extend_from_slice(schema::MAGIC_PLAIN);
        out.extend_from_slice(&schema::SCHEMA_PACKAGE.to_le_bytes());
        adb::block(&mut out, Block::Adb, &[&adb]);
        for (d, dir) in self.dirs.iter().enumerate() {
            for (f, file) in dir.files.iter().enumerate() {
                if let Content::Bytes(bytes) = &file.content {
                    if !bytes.is_empty() {
                        // Indices are 1-based, into `paths` and that directory's `files`.
                        let mut head = [0u8; 8];
                        head[..4].copy_from_slice(&(d as u32 + 1).to_le_bytes());
                        head[4..].copy_from_slice(&(f as u32 + 1).to_le_bytes());
                        adb::block(&mut out, Block::Data, &[&head, bytes]);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Regular files' bytes; at least 1 when there is anything to install, since apk unpacks nothing
    /// (and runs no script) of a package whose installed size is 0.
    fn installed_size(&self) -> u64 {
        let bytes: u64 = self
            .dirs
            .iter()
            .flat_map(|d| &d.files)
            .map(|f| match &f.content {
                Content::Bytes(b) => b.len() as u64,
                Content::Symlink(_) => 0,
            })
            .sum();
        let anything = self.dirs.iter().any(|d| !d.files.is_empty()) || !self.scripts.is_empty();
        if anything {
            bytes.max(1)
        } else {
            bytes
        }
    }

    /// The ADB block's payload: the package object and everything under it.
    fn metadata(&self) -> Result<Vec<u8>, Invalid> {
        let mut h = Heap::default();
        let (info, id_at) = self.info_object(&mut h);
        let paths: Vec<Val> = self.dirs.iter().map(|d| dir_object(&mut h, d)).collect();
        let paths = h.array(&paths);
        let scripts = scripts_object(&mut h, &self.scripts);
        let mut root = [Val::NULL; package::FIELDS];
        root[package::INFO - 1] = info;
        root[package::PATHS - 1] = paths;
        root[package::SCRIPTS - 1] = scripts;
        let root = h.object(&root);
        let mut payload = h.finish(root).map_err(|e| Invalid(e.to_string()))?;
        // The unique id: the block's sha256 taken while the id is zeros, then written in its place.
        let digest = Sha256::digest(&payload);
        payload[id_at..id_at + schema::UNIQUE_ID_LEN]
            .copy_from_slice(&digest[..schema::UNIQUE_ID_LEN]);
        Ok(payload)
    }

    /// The info object, and where the unique id's bytes are.
    fn info_object(&self, h: &mut Heap) -> (Val, usize) {
        let i = &self.info;
        let mut v = [Val::NULL; info::FIELDS];
        let mut text = |h: &mut Heap, field: usize, s: &str| v[field - 1] = h.blob(s.as_bytes());
        text(h, info::NAME, &i.name);
        text(h, info::VERSION, &i.version);
        text(h, info::DESCRIPTION, &i.description);
        text(h, info::ARCH, &i.arch);
        text(h, info::LICENSE, &i.license);
        text(h, info::ORIGIN, &i.origin);
        text(h, info::MAINTAINER, &i.maintainer);
        text(h, info::URL, &i.url);
        let (id, id_at) = h.blob_at(&[0; schema::UNIQUE_ID_LEN]);
        v[info::HASHES - 1] = id;
        if let Some(t) = i.build_time {
            v[info::BUILD_TIME - 1] = h.int(t);
        }
        v[info::INSTALLED_SIZE - 1] = h.int(self.installed_size());
        let deps: Vec<Val> = i.depends.iter().map(|d| dependency_object(h, d)).collect();
        v[info::DEPENDS - 1] = h.array(&deps);
        (h.object(&v), id_at)
    }
}

fn dependency_object(h: &mut Heap, d: &Dependency) -> Val {
    let mut v = [Val::NULL; dependency::FIELDS];
    v[dependency::NAME - 1] = h.blob(d.name.as_bytes());
    if let Some(version) = &d.version {
        v[dependency::VERSION - 1] = h.blob(version.as_bytes());
    }
    if let Some(m) = d.matching {
        v[dependency::MATCH - 1] = h.int(m.into());
    }
    h.object(&v)
}

fn acl_object(h: &mut Heap, mode: u32) -> Val {
    let mut v = [Val::NULL; acl::FIELDS];
    v[acl::MODE - 1] = h.int(mode.into());
    // Without a user and group apk gives the file to nobody (65534).
    v[acl::USER - 1] = h.blob(b"root");
    v[acl::GROUP - 1] = h.blob(b"root");
    h.object(&v)
}

fn dir_object(h: &mut Heap, d: &Dir) -> Val {
    let files: Vec<Val> = d.files.iter().map(|f| file_object(h, f)).collect();
    let mut v = [Val::NULL; dir::FIELDS];
    v[dir::NAME - 1] = h.blob(d.path.as_bytes());
    v[dir::ACL - 1] = acl_object(h, d.mode);
    v[dir::FILES - 1] = h.array(&files);
    h.object(&v)
}

fn file_object(h: &mut Heap, f: &File) -> Val {
    let mut v = [Val::NULL; file::FIELDS];
    v[file::NAME - 1] = h.blob(f.name.as_bytes());
    v[file::MTIME - 1] = h.int(f.mtime);
    match &f.content {
        Content::Bytes(bytes) => {
            v[file::ACL - 1] = acl_object(h, f.mode);
            v[file::SIZE - 1] = h.int(bytes.len() as u64);
            v[file::HASH - 1] = h.blob(&Sha256::digest(bytes));
        }
        Content::Symlink(target) => {
            v[file::ACL - 1] = acl_object(h, 0o777);
            v[file::SIZE - 1] = h.int(target.len() as u64);
            let mut t = schema::S_IFLNK.to_le_bytes().to_vec();
            t.extend_from_slice(target.as_bytes());
            v[file::TARGET - 1] = h.blob(&t);
        }
    }
    h.object(&v)
}

fn scripts_object(h: &mut Heap, scripts: &[(String, Vec<u8>)]) -> Val {
    let mut v = [Val::NULL; schema::SCRIPTS.len()];
    for (name, text) in scripts {
        if let Some(i) = schema::SCRIPTS.iter().position(|s| s == name) {
            v[i] = h.blob(text);
        }
    }
    h.object(&v)
}

/// The `.apk` as OpenWrt's are: "ADBd" and the whole stream in raw deflate.
pub fn compress(stream: &[u8]) -> Vec<u8> {
    let mut out = schema::MAGIC_DEFLATE.to_vec();
    deflate(zopfli::Format::Deflate, stream, &mut out);
    out
}

/// `data` compressed by Zopfli in `format` (raw deflate, or gzip with no name and no time), onto `out`.
pub fn deflate(format: zopfli::Format, data: &[u8], out: &mut Vec<u8>) {
    // Five passes: as small as fifteen within 0.1 ‰ on the agent's binary, in a third of the time.
    let options = zopfli::Options {
        iteration_count: std::num::NonZeroU64::new(5).unwrap(),
        ..Default::default()
    };
    zopfli::compress(options, format, data, out).expect("writing to memory");
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// apk installs nothing outside the root: a path has no leading or trailing `/`, no `.` or `..`.
fn check_path(path: &str) -> Result<(), Invalid> {
    if path.is_empty() {
        return Ok(());
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return invalid(format!("path {path:?}: not a plain relative path"));
    }
    check_name_bytes(path)
}

fn check_name_bytes(path: &str) -> Result<(), Invalid> {
    if path.chars().any(|c| c.is_control()) {
        return invalid(format!("path {path:?}: control characters"));
    }
    Ok(())
}

fn check_mode(path: &str, mode: u32) -> Result<(), Invalid> {
    if mode > 0o7777 {
        return invalid(format!(
            "{path:?}: mode {mode:o} has more than permission bits"
        ));
    }
    Ok(())
}

/// apk's version syntax: `1.2.3[a][_suffix[N]]…[~hash][-rN]`.
pub fn valid_version(v: &str) -> bool {
    const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
    let (v, release) = match v.rsplit_once("-r") {
        Some((v, r)) => (v, Some(r)),
        None => (v, None),
    };
    if release.is_some_and(|r| r.is_empty() || !r.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let (v, hash) = match v.split_once('~') {
        Some((v, h)) => (v, Some(h)),
        None => (v, None),
    };
    if hash.is_some_and(|h| h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit())) {
        return false;
    }
    let mut parts = v.split('_');
    let numbers = parts.next().unwrap_or("");
    let numbers = numbers
        .strip_suffix(|c: char| c.is_ascii_lowercase())
        .unwrap_or(numbers);
    let numbers_ok = numbers
        .split('.')
        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    numbers_ok
        && parts.all(|s| {
            let word = s.trim_end_matches(|c: char| c.is_ascii_digit());
            SUFFIXES.contains(&word)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Package {
        Package {
            info: Info {
                name: "hello".into(),
                version: "1.0.0-r1".into(),
                arch: "noarch".into(),
                depends: crate::depend::parse_list("libc").unwrap(),
                ..Info::default()
            },
            dirs: vec![
                Dir {
                    path: "".into(),
                    mode: 0o755,
                    files: vec![],
                },
                Dir {
                    path: "etc".into(),
                    mode: 0o755,
                    files: vec![],
                },
                Dir {
                    path: "etc/hello".into(),
                    mode: 0o755,
                    files: vec![
                        File {
                            name: "a".into(),
                            mode: 0o600,
                            mtime: 7,
                            content: Content::Bytes(b"abc".to_vec()),
                        },
                        File {
                            name: "b".into(),
                            mode: 0o644,
                            mtime: 7,
                            content: Content::Bytes(vec![]),
                        },
                        File {
                            name: "c".into(),
                            mode: 0o777,
                            mtime: 7,
                            content: Content::Symlink("a".into()),
                        },
                        File {
                            name: "d".into(),
                            mode: 0o755,
                            mtime: 7,
                            content: Content::Bytes(b"#!/bin/sh\n".to_vec()),
                        },
                    ],
                },
            ],
            scripts: vec![("post-install".into(), b"#!/bin/sh\ntrue\n".to_vec())],
        }
    }

    fn word(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn versions_follow_apk() {
        for ok in [
            "0.1.0-r1",
            "1",
            "1.2.3a",
            "1.0_rc2-r10",
            "2024.01.01~abc123-r2",
            "1_p1_git",
        ] {
            assert!(valid_version(ok), "{ok}");
        }
        for bad in [
            "", "1.0-1", "v1", "1..2", "1.0-r", "1.0_foo", "1.0~xyz", "0.1.0_r1", "1.0-rc1",
        ] {
            assert!(!valid_version(bad), "{bad}");
        }
    }

    #[test]
    fn data_blocks_follow_the_tree_and_skip_empty_files_and_links() {
        let stream = tiny().encode().unwrap();
        assert_eq!(&stream[..8], b"ADB.pckg");
        let adb_len = (word(&stream, 8) & 0x3fff_ffff) as usize;
        let mut at = 8 + adb_len.next_multiple_of(8);
        let mut seen = vec![];
        while at < stream.len() {
            let head = word(&stream, at);
            assert_eq!(head >> 30, 2, "only DATA after the ADB block");
            let size = (head & 0x3fff_ffff) as usize;
            seen.push((
                word(&stream, at + 4),
                word(&stream, at + 8),
                stream[at + 12..at + size].to_vec(),
            ));
            at += size.next_multiple_of(8);
        }
        assert_eq!(at, stream.len(), "the last block is padded too");
        assert_eq!(
            seen,
            [(3, 1, b"abc".to_vec()), (3, 4, b"#!/bin/sh\n".to_vec())]
        );
    }

    /// The unique id of an encoded stream, found by following the words: root -> info -> hashes.
    fn unique_id(stream: &[u8]) -> Vec<u8> {
        let adb = &stream[12..];
        let slot = |obj: u32, n: usize| word(adb, (obj & 0x0fff_ffff) as usize + 4 * n);
        let hashes = slot(slot(word(adb, 4), package::INFO), info::HASHES);
        assert_eq!(hashes >> 28, 0x8, "a short blob");
        let at = (hashes & 0x0fff_ffff) as usize;
        adb[at + 1..at + 1 + adb[at] as usize].to_vec()
    }

    #[test]
    fn the_unique_id_is_the_metadata_hash_with_itself_zeroed() {
        let stream = tiny().encode().unwrap();
        let id = unique_id(&stream);
        assert_eq!(id.len(), schema::UNIQUE_ID_LEN);
        let adb_len = (word(&stream, 8) & 0x3fff_ffff) as usize - 4;
        let mut adb = stream[12..12 + adb_len].to_vec();
        let at = adb.windows(20).position(|w| w == id).unwrap();
        adb[at..at + 20].fill(0);
        assert_eq!(Sha256::digest(&adb)[..20], id);
        // Reproducible, and another content is another package.
        assert_eq!(unique_id(&tiny().encode().unwrap()), id);
        let mut other = tiny();
        other.dirs[2].files[0].content = Content::Bytes(b"abd".to_vec());
        assert_ne!(unique_id(&other.encode().unwrap()), id);
    }

    #[test]
    fn nothing_apk_would_misread_is_written() {
        let bad = |f: fn(&mut Package)| {
            let mut p = tiny();
            f(&mut p);
            p.encode().unwrap_err()
        };
        bad(|p| p.info.name = "-x".into());
        bad(|p| p.info.version = "1.0-1".into());
        bad(|p| p.info.arch = "".into());
        bad(|p| p.dirs[1].path = "/etc".into());
        bad(|p| p.dirs[2].path = "etc/../x".into());
        bad(|p| p.dirs.swap(1, 2));
        bad(|p| {
            p.dirs.remove(1);
        });
        bad(|p| p.dirs[2].files.swap(0, 1));
        bad(|p| p.dirs[2].files[0].name = "x/y".into());
        bad(|p| p.dirs[2].files[0].name = "x\ny".into());
        bad(|p| p.dirs[2].files[0].mode = 0o100644);
        bad(|p| p.scripts[0].0 = "postinst".into());
        bad(|p| p.scripts[0].1 = b"default_postinst".to_vec());
        bad(|p| p.scripts.push(p.scripts[0].clone()));
        assert!(tiny().encode().is_ok());
    }

    #[test]
    fn compressed_is_adbd_and_raw_deflate_of_the_stream() {
        let stream = tiny().encode().unwrap();
        let apk = compress(&stream);
        assert_eq!(&apk[..4], b"ADBd");
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::DeflateDecoder::new(&apk[4..]), &mut back)
            .unwrap();
        assert_eq!(back, stream);
    }
}
