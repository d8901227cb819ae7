//! Reads a staged directory (what the package installs, relative to `/`) into the package's tree.

use crate::package::{Content, Dir, File};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Every directory under `root` (itself as `""`), sorted by path, each with its files sorted by name.
/// `mtime` replaces every file's own (SOURCE_DATE_EPOCH: the same input gives the same package).
pub fn read(root: &Path, mtime: Option<u64>) -> io::Result<Vec<Dir>> {
    let mut dirs = Vec::new();
    walk(root, String::new(), mtime, &mut dirs)?;
    dirs.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(dirs)
}

fn walk(dir: &Path, path: String, mtime: Option<u64>, dirs: &mut Vec<Dir>) -> io::Result<()> {
    let mode = fs::metadata(dir)?.permissions().mode() & 0o7777;
    let mut entries: Vec<(String, fs::DirEntry)> = fs::read_dir(dir)?
        .map(|e| {
            let e = e?;
            let name = e.file_name().into_string().map_err(|n| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{n:?}: not UTF-8"))
            })?;
            Ok((name, e))
        })
        .collect::<io::Result<_>>()?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut files = Vec::new();
    for (name, entry) in entries {
        let meta = entry.path().symlink_metadata()?;
        let child = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}/{name}")
        };
        let kind = meta.file_type();
        let content = if kind.is_dir() {
            walk(&entry.path(), child, mtime, dirs)?;
            continue;
        } else if kind.is_symlink() {
            let target = fs::read_link(entry.path())?;
            let target = target.into_os_string().into_string().map_err(|t| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{child}: link target {t:?} not UTF-8"),
                )
            })?;
            Content::Symlink(target)
        } else if kind.is_file() {
            Content::Bytes(fs::read(entry.path())?)
        } else {
            let what = format!("{child}: a device, fifo or socket; a package holds none");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        };
        files.push(File {
            name,
            mode: meta.mode() & 0o7777,
            mtime: mtime.unwrap_or(meta.mtime().max(0) as u64),
            content,
        });
    }
    dirs.push(Dir { path, mode, files });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn directories_and_files_come_sorted_with_their_modes() {
        let root = std::env::temp_dir().join(format!("wilife-mkapk-tree-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("usr/lib-x")).unwrap();
        fs::create_dir_all(root.join("usr/lib/y")).unwrap();
        fs::write(root.join("usr/lib/y/b"), "b").unwrap();
        fs::set_permissions(root.join("usr/lib/y/b"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(root.join("usr/lib/y/a"), "a").unwrap();
        fs::set_permissions(root.join("usr/lib/y/a"), fs::Permissions::from_mode(0o4750)).unwrap();
        symlink("a", root.join("usr/lib/y/l")).unwrap();
        let dirs = read(&root, Some(5)).unwrap();
        let paths: Vec<&str> = dirs.iter().map(|d| d.path.as_str()).collect();
        // Bytewise: '-' sorts before '/', as apk sorts them.
        assert_eq!(paths, ["", "usr", "usr/lib", "usr/lib-x", "usr/lib/y"]);
        let y = &dirs[4];
        let names: Vec<(&str, u32, u64)> = y
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.mode, f.mtime))
            .collect();
        assert_eq!(names[..2], [("a", 0o4750, 5), ("b", 0o644, 5)]);
        assert!(matches!(&y.files[2].content, Content::Symlink(t) if t == "a"));
        fs::remove_dir_all(&root).unwrap();
    }
}
