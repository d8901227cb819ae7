//! The package schema ("pckg") of apk-tools v3: which field number each piece of a package has
//! (apk-package(5)). An object's slot N holds field N.

/// The schema id after the file magic: the bytes "pckg" read as a little-endian word.
pub const SCHEMA_PACKAGE: u32 = u32::from_le_bytes(*b"pckg");

/// The file magic of an uncompressed stream, and of one compressed with raw deflate.
pub const MAGIC_PLAIN: &[u8; 4] = b"ADB.";
pub const MAGIC_DEFLATE: &[u8; 4] = b"ADBd";

/// The package (the root object).
pub mod package {
    pub const INFO: usize = 1;
    pub const PATHS: usize = 2;
    pub const SCRIPTS: usize = 3;
    pub const FIELDS: usize = 5;
}

/// The package's info.
pub mod info {
    pub const NAME: usize = 1;
    pub const VERSION: usize = 2;
    pub const HASHES: usize = 3;
    pub const DESCRIPTION: usize = 4;
    pub const ARCH: usize = 5;
    pub const LICENSE: usize = 6;
    pub const ORIGIN: usize = 7;
    pub const MAINTAINER: usize = 8;
    pub const URL: usize = 9;
    pub const BUILD_TIME: usize = 11;
    pub const INSTALLED_SIZE: usize = 12;
    pub const PROVIDER_PRIORITY: usize = 14;
    pub const DEPENDS: usize = 15;
    pub const PROVIDES: usize = 16;
    pub const FIELDS: usize = 21;
}

/// One dependency (or provide).
pub mod dependency {
    pub const NAME: usize = 1;
    pub const VERSION: usize = 2;
    pub const MATCH: usize = 3;
    pub const FIELDS: usize = 3;
}

/// One directory of the package's tree (an entry of `paths`), with the files directly in it.
pub mod dir {
    pub const NAME: usize = 1;
    pub const ACL: usize = 2;
    pub const FILES: usize = 3;
    pub const FIELDS: usize = 3;
}

pub mod file {
    pub const NAME: usize = 1;
    pub const ACL: usize = 2;
    pub const SIZE: usize = 3;
    pub const MTIME: usize = 4;
    pub const HASH: usize = 5;
    pub const TARGET: usize = 6;
    pub const FIELDS: usize = 6;
}

/// Owner and permissions of a directory or file.
pub mod acl {
    pub const MODE: usize = 1;
    pub const USER: usize = 2;
    pub const GROUP: usize = 3;
    pub const FIELDS: usize = 4;
}

/// The maintainer scripts, by the name `--script NAME:FILE` and apk use for them.
pub const SCRIPTS: [&str; 7] = [
    "trigger",
    "pre-install",
    "post-install",
    "pre-deinstall",
    "post-deinstall",
    "pre-upgrade",
    "post-upgrade",
];

/// The length of the unique id in `info.hashes`: the first 20 bytes of the ADB block's sha256.
pub const UNIQUE_ID_LEN: usize = 20;

/// The file-type bits of a symlink, which open its `target` field.
pub const S_IFLNK: u16 = 0o120000;
