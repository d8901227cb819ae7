//! OpenWrt's userland as the tests stand it in, no kinder than the real thing (DESIGN §8): scripts run
//! under busybox `ash` with only OpenWrt's default applets and the stand-ins (`uci`, `ubus`,
//! `reload_config`, procd's `rc.common`, `/lib/functions.sh`) on the PATH, in the router, under
//! `openwrt-root` (a `/dev` without `stdin`, and the installed package's files at their real paths).
//! Packages go in as opkg installs them (`install`) or as apk does (`apk_add`, `apk_upgrade`,
//! `apk_del`: a package read by the independent reader, scripts run as apk runs them).

use crate::lab::{openwrt_root, repo_root, Lab};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// A package as the apk stand-in installed it: what apk keeps of it.
#[derive(Clone, Debug)]
pub struct ApkInstalled {
    pub name: String,
    pub version: String,
    /// What the independent reader read (`tests/tools/apk_read.py`): info, scripts, dirs, files.
    pub package: serde_json::Value,
}

/// The independent reader's view of an .apk (`tests/tools/apk_read.py`), unpacked into `into` when
/// given; Err with the reader's reason when it refuses the package.
pub fn apk_read(apk: &Path, into: Option<&Path>) -> Result<serde_json::Value, String> {
    let mut c = Command::new("python3");
    c.arg(repo_root().join("tests/tools/apk_read.py")).arg(apk);
    if let Some(dir) = into {
        c.arg("--extract").arg(dir);
    }
    let out = c.output().expect("python3");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("the reader prints JSON"))
}

/// The stand-ins' directory.
pub fn stubs() -> PathBuf {
    repo_root().join("tests/openwrt-stubs")
}

/// A directory of links to Debian's busybox: OpenWrt's default applets (`busybox-applets`), and only
/// those this busybox has (an applet both lack stays missing, never replaced by a kinder tool).
pub fn applets() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "/bin/busybox is missing: install Debian's busybox (tests/setup.sh does)"
        );
        let list = Command::new(busybox).arg("--list").output().unwrap();
        let has: Vec<String> = String::from_utf8_lossy(&list.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let wanted = fs::read_to_string(stubs().join("busybox-applets")).unwrap();
        let links: Vec<&str> = wanted
            .lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(str::split_whitespace)
            .filter(|applet| has.iter().any(|h| h == applet))
            .collect();
        // Named by what it holds, and made whole under another name first: every run (and every
        // test binary at once) shares one directory, and none is left behind per run.
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&links, &mut hasher);
        let name = format!("wilife-applets-{:016x}", std::hash::Hasher::finish(&hasher));
        let dir = std::env::temp_dir().join(&name);
        if !dir.exists() {
            let making = std::env::temp_dir().join(format!("{name}.{}", std::process::id()));
            let _ = fs::remove_dir_all(&making);
            fs::create_dir_all(&making).unwrap();
            for applet in &links {
                symlink(busybox, making.join(applet)).unwrap();
            }
            if fs::rename(&making, &dir).is_err() {
                // Another test binary made it first.
                fs::remove_dir_all(&making).unwrap();
            }
        }
        dir
    })
}

/// The PATH of a script on the router, stood in: the stand-ins, the programs `commands` holds (links
/// to what the packages installed in /usr/sbin, /usr/bin), then the applets.
pub fn script_path(commands: &Path) -> String {
    format!(
        "{}:{}:{}",
        stubs().display(),
        commands.display(),
        applets().display()
    )
}

/// An installed root: `.ipk` data unpacked as opkg does (with its `/usr/lib/opkg/info` files), plus
/// what OpenWrt has there that the package relies on, stood in.
pub struct Root {
    pub dir: PathBuf,
    /// Where the stand-ins note what they would send procd (`rc.common`) and the firewall.
    pub procd_log: PathBuf,
    /// netifd's answer to `ubus call network.interface dump` (see `set_networks`).
    pub netifd: PathBuf,
    /// Where `uci` stages changes (OpenWrt: /tmp/.uci).
    pub uci_stage: PathBuf,
}

impl Root {
    /// An empty root under `parent` with OpenWrt's stand-ins in place.
    pub fn new(parent: &Path) -> Root {
        let dir = parent.join("root");
        for d in [
            "etc/init.d",
            "etc/config",
            "lib",
            "usr/bin",
            "usr/lib/opkg/info",
        ] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        // A router always has configs of its own before any package's (reload_config sums them).
        fs::write(
            dir.join("etc/config/system"),
            "config system\n\toption hostname 'OpenWrt'\n",
        )
        .unwrap();
        fs::create_dir_all(parent.join("root-path")).unwrap();
        let copy = |from: &str, to: &str| {
            fs::copy(stubs().join(from), dir.join(to)).unwrap();
        };
        copy("rc.common", "etc/rc.common");
        copy("functions.sh", "lib/functions.sh");
        copy("firewall.init", "etc/init.d/firewall");
        // OpenWrt's /bin/sh is busybox ash (Debian's is dash).
        symlink("/bin/busybox", dir.join("usr/bin/sh")).unwrap();
        let root = Root {
            procd_log: parent.join("procd.log"),
            netifd: parent.join("netifd.json"),
            uci_stage: parent.join("uci-stage"),
            dir,
        };
        fs::write(&root.procd_log, "").unwrap();
        root
    }

    /// Installs an .ipk as opkg does: data into the root, control files into /usr/lib/opkg/info (with
    /// the list of installed files that default_postinst reads).
    pub fn install(&self, ipk: &Path) -> String {
        let work = self.dir.with_file_name(format!(
            "unpacked-{}",
            ipk.file_name().unwrap().to_string_lossy()
        ));
        let _ = fs::remove_dir_all(&work);
        untar(ipk, &work);
        untar(&work.join("data.tar.gz"), &self.dir);
        untar(&work.join("control.tar.gz"), &work.join("control"));
        let control = fs::read_to_string(work.join("control/control")).unwrap();
        let name = control
            .lines()
            .find_map(|l| l.strip_prefix("Package: "))
            .unwrap()
            .to_string();
        let info = self.dir.join("usr/lib/opkg/info");
        for e in fs::read_dir(work.join("control")).unwrap().flatten() {
            let file = e.file_name().to_string_lossy().to_string();
            fs::copy(e.path(), info.join(format!("{name}.{file}"))).unwrap();
        }
        let listing = Command::new("tar")
            .args(["-tzf"])
            .arg(work.join("data.tar.gz"))
            .output()
            .unwrap();
        let files: String = String::from_utf8_lossy(&listing.stdout)
            .lines()
            .filter(|l| !l.ends_with('/'))
            .map(|l| format!("{}\n", l.trim_start_matches('.')))
            .collect();
        for file in files.lines() {
            self.put_on_path(file);
            self.config_in_upper(file);
        }
        fs::write(info.join(format!("{name}.list")), files).unwrap();
        name
    }

    /// The end of OpenWrt's boot (/etc/init.d/boot): `reload_config` sums every config there is
    /// into /var/run/config.md5. A config installed later has no sum there.
    pub fn boot(&self, lab: &Lab) {
        self.ash(lab, &["-c", "reload_config"]);
    }

    /// `apk add --allow-untrusted FILE` on a running router: the package read by the independent
    /// reader (what it refuses is refused here), its files unpacked at their paths, then its
    /// post-install run as apk runs it.
    pub fn apk_add(&self, lab: &Lab, apk: &Path) -> ApkInstalled {
        let pkg = self.apk_unpack(apk);
        self.apk_script(lab, &pkg, "post-install", &[&pkg.version]);
        pkg
    }

    /// `apk upgrade` (or `apk fix --reinstall`): the new files over the old, then only the new
    /// package's post-upgrade, with the new and the old version (apk runs no pre-deinstall of the old).
    pub fn apk_upgrade(&self, lab: &Lab, apk: &Path, old: &ApkInstalled) -> ApkInstalled {
        let pkg = self.apk_unpack(apk);
        self.apk_script(lab, &pkg, "post-upgrade", &[&pkg.version, &old.version]);
        pkg
    }

    /// `apk del NAME`: pre-deinstall, the files removed (a config file the user changed stays, as
    /// apk keeps it), post-deinstall.
    pub fn apk_del(&self, lab: &Lab, pkg: &ApkInstalled) {
        self.apk_script(lab, pkg, "pre-deinstall", &[&pkg.version]);
        for f in pkg.package["files"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            let changed = f["sha256"].as_str().is_some_and(|sum| {
                self.read(path)
                    .is_some_and(|now| sha256_hex(now.as_bytes()) != sum)
            });
            if path.starts_with("/etc/") && changed {
                continue;
            }
            let rel = path.trim_start_matches('/');
            let (top, rest) = rel.split_once('/').unwrap_or((rel, ""));
            let _ = fs::remove_file(self.dir.join(rel));
            let _ = fs::remove_file(self.dir.join(".rw").join(top).join("upper").join(rest));
        }
        self.apk_script(lab, pkg, "post-deinstall", &[&pkg.version]);
    }

    /// The files of `apk` in place, as apk puts them before it runs post-install or post-upgrade:
    /// each replaces what was there, but a config file the user changed (apk keeps it, and writes
    /// the package's beside it as .apk-new).
    pub fn apk_unpack(&self, apk: &Path) -> ApkInstalled {
        let package = apk_read(apk, Some(&self.dir))
            .unwrap_or_else(|why| panic!("apk refuses {}: {why}", apk.display()));
        for f in package["files"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            let rel = path.trim_start_matches('/');
            let (top, rest) = rel.split_once('/').unwrap_or((rel, ""));
            let written = self.dir.join(".rw").join(top).join("upper").join(rest);
            // What ran earlier wrote (or deleted: a whiteout) it in the overlay's upper layer.
            if written.symlink_metadata().is_ok() && !path.starts_with("/etc/config/") {
                fs::remove_file(&written).unwrap();
            }
            self.put_on_path(path);
            self.config_in_upper(path);
        }
        ApkInstalled {
            name: package["info"]["name"].as_str().unwrap().to_string(),
            version: package["info"]["version"].as_str().unwrap().to_string(),
            package,
        }
    }

    /// A maintainer script as apk runs it: from a file descriptor (`$0` is /proc/self/fd/6, not the
    /// script's name), with arguments, in `/`, in a clean environment holding only PATH (the router's,
    /// stood in), APK_SCRIPT and APK_PACKAGE (and the stand-ins' own plumbing, which no script reads);
    /// stdin empty. A script the package lacks is not run; one that fails fails the test.
    pub fn apk_script(&self, lab: &Lab, pkg: &ApkInstalled, script: &str, args: &[&str]) {
        let Some(text) = pkg.package["scripts"][script].as_str() else {
            return;
        };
        let file = self
            .dir
            .with_file_name(format!("apk-{}.{script}", pkg.name));
        fs::write(&file, text).unwrap();
        fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mut full = vec![
            "ash",
            "-c",
            r#"cd / && exec 6< "$0" && exec /proc/self/fd/6 "$@""#,
            file.to_str().unwrap(),
        ];
        full.extend_from_slice(args);
        let env = [("APK_SCRIPT", script), ("APK_PACKAGE", pkg.name.as_str())];
        let out = self.run(lab, true, &full, &env, b"");
        assert!(
            out.status.success(),
            "{} {script} failed: {}{}",
            pkg.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A program the package installs where OpenWrt's PATH (/usr/sbin:/usr/bin:/sbin:/bin) finds it
    /// is linked into `commands`.
    /// On a router a package's files are written into the overlay's upper layer. A config must be
    /// there from the start here too: overlayfs does not show an agent that is already running a
    /// file that appears in a lower layer after it mounted (the first `uci commit`), only changes
    /// to the file it found.
    fn config_in_upper(&self, file: &str) {
        let Some(rest) = file.strip_prefix("/etc/") else {
            return;
        };
        if !rest.starts_with("config/") {
            return;
        }
        let written = self.dir.join(".rw/etc/upper").join(rest);
        if written.symlink_metadata().is_err() {
            fs::create_dir_all(written.parent().unwrap()).unwrap();
            fs::copy(self.dir.join(file.trim_start_matches('/')), &written).unwrap();
        }
    }

    fn put_on_path(&self, file: &str) {
        let on_path = ["/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"]
            .iter()
            .any(|d| file.strip_prefix(d).is_some_and(|rest| !rest.contains('/')));
        if on_path {
            let link = self.commands().join(Path::new(file).file_name().unwrap());
            let _ = fs::remove_file(&link);
            symlink(file, link).unwrap();
        }
    }

    /// Links to the installed programs that are on OpenWrt's PATH (see `script_path`).
    pub fn commands(&self) -> PathBuf {
        self.dir.with_file_name("root-path")
    }

    /// What netifd answers for the logical networks: (name, up, l3_device, device).
    pub fn set_networks(&self, networks: &[(&str, bool, Option<&str>, Option<&str>)]) {
        let list: Vec<serde_json::Value> = networks
            .iter()
            .map(|(name, up, l3, dev)| {
                let mut i = serde_json::json!({"interface": name, "up": up, "pending": false,
                    "available": true, "autostart": true, "dynamic": false, "proto": "static"});
                if let Some(l3) = l3 {
                    i["l3_device"] = (*l3).into();
                }
                if let Some(dev) = dev {
                    i["device"] = (*dev).into();
                }
                i
            })
            .collect();
        fs::write(
            &self.netifd,
            serde_json::json!({ "interface": list }).to_string(),
        )
        .unwrap();
    }

    /// A file of the root as the router sees it now (written files included).
    pub fn read(&self, path: &str) -> Option<String> {
        let rel = path.trim_start_matches('/');
        let (top, rest) = rel.split_once('/').unwrap_or((rel, ""));
        let written = self.dir.join(".rw").join(top).join("upper").join(rest);
        fs::read_to_string(&written)
            .ok()
            .or_else(|| fs::read_to_string(self.dir.join(rel)).ok())
    }

    /// A file's owner and permission bits as the router sees it now (written files included).
    pub fn owner_and_mode(&self, path: &str) -> Option<(u32, u32)> {
        use std::os::unix::fs::MetadataExt;
        let rel = path.trim_start_matches('/');
        let (top, rest) = rel.split_once('/').unwrap_or((rel, ""));
        let written = self.dir.join(".rw").join(top).join("upper").join(rest);
        let m = fs::metadata(&written)
            .or_else(|_| fs::metadata(self.dir.join(rel)))
            .ok()?;
        Some((m.uid(), m.mode() & 0o7777))
    }

    /// Whether a path is there as the router sees it now (a deletion in the overlay hides it).
    pub fn exists(&self, path: &str) -> bool {
        let rel = path.trim_start_matches('/');
        let (top, rest) = rel.split_once('/').unwrap_or((rel, ""));
        let written = self.dir.join(".rw").join(top).join("upper").join(rest);
        match written.symlink_metadata() {
            // overlayfs marks a deleted file with a character device.
            Ok(m) => !std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type()),
            Err(_) => self.dir.join(rel).symlink_metadata().is_ok(),
        }
    }

    /// Writes a file into the root as shipped (before anything runs; e.g. what a user adds in LuCI).
    pub fn write(&self, path: &str, text: &str) {
        let shipped = self.dir.join(path.trim_start_matches('/'));
        fs::write(&shipped, text).unwrap();
        // A config is kept in the upper layer (`config_in_upper`).
        if let Some(rest) = path.strip_prefix("/etc/config/") {
            let written = self.dir.join(".rw/etc/upper/config").join(rest);
            if written.exists() {
                fs::write(written, text).unwrap();
            }
        }
    }

    /// The environment scripts and the agent get here: the stand-ins' state and netifd's answer.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "STUB_PROCD_LOG".into(),
                self.procd_log.display().to_string(),
            ),
            ("STUB_NETIFD".into(), self.netifd.display().to_string()),
            (
                "STUB_UCI_STAGE".into(),
                self.uci_stage.display().to_string(),
            ),
        ]
    }

    /// Runs `args` in the router over this root, with `env` only (no variable of the test's own)
    /// and `stdin`; `rw` lets it write the root (one writer at a time). The output, whatever the status.
    pub fn run(
        &self,
        lab: &Lab,
        rw: bool,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: &[u8],
    ) -> Output {
        let mut c = Command::new(crate::lab::ip_program());
        c.args(["netns", "exec", &lab.router])
            .arg(openwrt_root())
            .args(args)
            .env_clear()
            .env("OPENWRT_ROOT", &self.dir)
            .env("PATH", script_path(&self.commands()))
            .envs(self.env())
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if rw {
            c.env("OPENWRT_ROOT_RW", "1");
        }
        let mut child = c.spawn().expect("run in the router");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    /// A script as OpenWrt runs it (`ash SCRIPT ARGS`, writing allowed); panics if it fails.
    pub fn ash(&self, lab: &Lab, args: &[&str]) -> Output {
        let mut full = vec!["ash"];
        full.extend_from_slice(args);
        let out = self.run(lab, true, &full, &[], b"");
        assert!(
            out.status.success(),
            "ash {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// A file's sha256 as apk and sha256sum write it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn untar(archive: &Path, into: &Path) {
    fs::create_dir_all(into).unwrap();
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tar {}: {}",
        archive.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
