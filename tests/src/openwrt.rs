//! OpenWrt's userland as the tests stand it in, no kinder than the real thing (DESIGN §8): scripts run
//! under busybox `ash` with only OpenWrt's default applets and the stand-ins (`uci`, `ubus`, procd's
//! `rc.common`, `/lib/functions.sh`) on the PATH, in the router, under `openwrt-root` (a `/dev` without
//! `stdin`, and the installed package's files at their real paths).

use crate::lab::{openwrt_root, repo_root, Lab};
use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

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
        for d in ["etc/init.d", "lib", "usr/bin", "usr/lib/opkg/info"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
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
        // What the package puts on OpenWrt's PATH (/usr/sbin:/usr/bin:/sbin:/bin), by its real path.
        for file in files.lines() {
            let on_path = ["/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"]
                .iter()
                .any(|d| file.strip_prefix(d).is_some_and(|rest| !rest.contains('/')));
            if on_path {
                let link = self.commands().join(Path::new(file).file_name().unwrap());
                let _ = fs::remove_file(&link);
                symlink(file, link).unwrap();
            }
        }
        fs::write(info.join(format!("{name}.list")), files).unwrap();
        name
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

    /// Writes a file into the root as shipped (before anything runs; e.g. what a user adds in LuCI).
    pub fn write(&self, path: &str, text: &str) {
        fs::write(self.dir.join(path.trim_start_matches('/')), text).unwrap();
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
