//! Issue 26: the .apk files (apk-tools v3, OpenWrt 25.12 and later) that
//! `openwrt-package/build-packages.sh` writes beside the .ipk files. Each is read back by a reader that is
//! not the writer (`tests/tools/apk_read.py`: the ADB framing, the schema, every file's sha256 and DATA
//! block) and held to what OpenWrt's own build puts into a package (`openwrt_apk_check.py`: fields, arch,
//! modes, owners, /lib/apk/packages lists, the scripts' form); then compared with the .ipk of the same
//! build, file by file. Packages broken on purpose are refused, and the apk stand-in shows why each check
//! matters: without the list, or with opkg's scripts, the service never starts.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use wilife_lab::lab::*;
use wilife_lab::openwrt::{apk_read, sha256_hex, Root};
use wilife_lab::packages::*;
use wilife_lab::procd::{Did, Procd};

/// The header OpenWrt 25.12 writes before default_postinst in post-install (and post-upgrade, after
/// `export PKG_UPGRADE=1`), include/package-pack.mk, for package NAME.
fn openwrt_postinst_header(name: &str) -> String {
    format!(
        "[ \"${{IPKG_NO_SCRIPT}}\" = \"1\" ] && exit 0\n\
         [ -s ${{IPKG_INSTROOT}}/lib/functions.sh ] || exit 0\n\
         . ${{IPKG_INSTROOT}}/lib/functions.sh\n\
         export root=\"${{IPKG_INSTROOT}}\"\n\
         export pkgname=\"{name}\"\n\
         add_group_and_user\n\
         default_postinst\n"
    )
}

/// The package's own part (openwrt-package/scripts/NAME.PART) as OpenWrt appends it: no `#!` lines.
fn own_part(name: &str, part: &str) -> String {
    let path = repo_root().join(format!("openwrt-package/scripts/{name}.{part}"));
    fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter(|l| !l.trim_start().starts_with("#!"))
                .map(|l| format!("{l}\n"))
                .collect()
        })
        .unwrap_or_default()
}

/// The scripts of package NAME in OpenWrt 25.12's form.
fn expected_scripts(name: &str) -> BTreeMap<String, String> {
    let post_install = openwrt_postinst_header(name) + &own_part(name, "postinst");
    let mut s = BTreeMap::new();
    s.insert("post-install".into(), format!("#!/bin/sh\n{post_install}"));
    s.insert(
        "post-upgrade".into(),
        format!("#!/bin/sh\nexport PKG_UPGRADE=1\n{post_install}"),
    );
    s.insert(
        "pre-deinstall".into(),
        format!(
            "#!/bin/sh\n[ -s ${{IPKG_INSTROOT}}/lib/functions.sh ] || exit 0\n\
             . ${{IPKG_INSTROOT}}/lib/functions.sh\nexport root=\"${{IPKG_INSTROOT}}\"\n\
             export pkgname=\"{name}\"\ndefault_prerm\n{}",
            own_part(name, "prerm")
        ),
    );
    let postrm = repo_root().join(format!("openwrt-package/scripts/{name}.postrm"));
    if let Ok(text) = fs::read_to_string(postrm) {
        s.insert("post-deinstall".into(), text);
    }
    s
}

/// A package's maintainer scripts by name, as the reader saw them.
fn scripts_of(pkg: &Value) -> BTreeMap<String, String> {
    pkg["scripts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

/// path -> (mode, sha256) of a package's files, as the reader saw them.
fn apk_files(pkg: &Value) -> BTreeMap<String, (u32, String)> {
    pkg["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                (
                    f["mode"].as_u64().unwrap() as u32,
                    f["sha256"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect()
}

/// The same of an unpacked .ipk.
fn ipk_files(ipk: &Ipk) -> BTreeMap<String, (u32, String)> {
    ipk.files
        .iter()
        .map(|(path, mode)| {
            let bytes = fs::read(ipk.root.join(path.trim_start_matches('/'))).unwrap();
            (path.clone(), (*mode, sha256_hex(&bytes)))
        })
        .collect()
}

/// One package in both formats: the .apk passes the checks, says what the .ipk says, and holds the
/// same files with the same modes and contents, plus its /lib/apk/packages lists.
fn same_package(name: &str, ipk_arch: &str, apk_arch: &str) -> (Value, PathBuf) {
    let apk_path = apk(name, apk_arch);
    let what = apk_path.display().to_string();
    let pkg = apk_check(&apk_path).unwrap_or_else(|why| panic!("{why}"));
    let work = tempdir(&format!("{name}-{apk_arch}"));
    let ipk = Ipk::open(&ipk(name, ipk_arch), &work.join("ipk"));
    let info = &pkg["info"];
    assert_eq!(info["name"], name, "{what}");
    assert_eq!(info["version"].as_str().unwrap(), version(), "{what}");
    assert_eq!(info["version"].as_str().unwrap(), ipk.field("Version"));
    assert_eq!(info["arch"], apk_arch, "{what}");
    assert_eq!(info["license"].as_str().unwrap(), ipk.field("License"));
    assert_eq!(info["origin"].as_str().unwrap(), ipk.field("Source"));
    assert_eq!(info["url"].as_str().unwrap(), makefile_value("  URL"));
    assert_eq!(
        info["maintainer"].as_str().unwrap(),
        makefile_value("PKG_MAINTAINER")
    );
    assert!(info["description"]
        .as_str()
        .unwrap()
        .starts_with(&ipk.field("Description")));
    // apk's depends are opkg's, as words.
    let depends: Vec<&str> = info["depends"]
        .as_array()
        .map(|d| d.iter().map(|d| d["name"].as_str().unwrap()).collect())
        .unwrap_or_default();
    let mut opkg: Vec<String> = ipk
        .field("Depends")
        .split(',')
        .map(|d| d.trim().to_string())
        .collect();
    opkg.sort();
    assert_eq!(depends, opkg, "{what}");
    for d in info["depends"].as_array().unwrap() {
        assert!(d.get("version").is_none(), "{what}: {d}");
    }
    // The same files, modes and contents; the .apk adds only its lists.
    let mut files = apk_files(&pkg);
    let meta = format!("/lib/apk/packages/{name}.");
    let lists: Vec<String> = files
        .keys()
        .filter(|p| p.starts_with(&meta))
        .cloned()
        .collect();
    for l in &lists {
        assert_eq!(files.remove(l).unwrap().0, 0o644, "{what}: {l}");
    }
    assert_eq!(files, ipk_files(&ipk), "{what} against its .ipk");
    // The scripts, exactly as OpenWrt writes them.
    let scripts = scripts_of(&pkg);
    assert_eq!(scripts, expected_scripts(name), "{what}");
    (pkg, work)
}

#[test]
fn every_apk_reads_back_with_openwrts_fields_and_holds_what_its_ipk_holds() {
    // Every arch name has both formats.
    let archs = apk_archs();
    assert_eq!(
        archs,
        ipk_archs(),
        "arch names with an .apk and with an .ipk"
    );
    for arch in &archs {
        let (pkg, work) = same_package("wilife-agent", arch, arch);
        let what = format!("wilife-agent for {arch}");
        // Its lists, read from the package itself.
        let root = work.join("apk");
        apk_read(&apk("wilife-agent", arch), Some(&root)).unwrap();
        let list = fs::read_to_string(root.join("lib/apk/packages/wilife-agent.list")).unwrap();
        assert_eq!(
            list,
            "/etc/config/wilife\n/etc/init.d/wilife\n/etc/uci-defaults/90-wilife\n\
             /lib/upgrade/keep.d/wilife-agent\n/usr/sbin/wilife-agent\n/usr/share/nftables.d/chain-pre/forward/30-wilife.nft\n",
            "{what}"
        );
        assert_eq!(
            fs::read_to_string(root.join("lib/apk/packages/wilife-agent.conffiles")).unwrap(),
            "/etc/config/wilife\n"
        );
        let config = fs::read(repo_root().join("openwrt-package/wilife-agent/files/wilife.config"));
        assert_eq!(
            fs::read_to_string(root.join("lib/apk/packages/wilife-agent.conffiles_static"))
                .unwrap(),
            format!("/etc/config/wilife {}\n", sha256_hex(&config.unwrap()))
        );
        let elf = fs::read(root.join("usr/sbin/wilife-agent")).unwrap();
        assert_elf_for(&elf, arch, &what);
        assert!(pkg["info"]["description"].as_str().unwrap().len() > 40);
        let _ = fs::remove_dir_all(&work);
    }
    // LuCI's: arch-independent is "noarch" for apk ("all" would be a foreign arch), "all" for opkg.
    let (pkg, work) = same_package("luci-app-wilife", "all", "noarch");
    assert!(!pkg["files"].as_array().unwrap().is_empty());
    let _ = fs::remove_dir_all(&work);
}

/// Rewrites a package from its parts with the project's writer: `tree` (files, modes), the info of
/// `pkg` (with `arch`) and `scripts` (name -> text).
fn write_apk(tree: &Path, pkg: &Value, arch: &str, scripts: &BTreeMap<String, String>, out: &Path) {
    let info = &pkg["info"];
    let text = |k: &str| info[k].as_str().unwrap_or("").to_string();
    let depends: Vec<&str> = info["depends"]
        .as_array()
        .map(|d| d.iter().map(|d| d["name"].as_str().unwrap()).collect())
        .unwrap_or_default();
    let dir = out.with_extension("scripts");
    fs::create_dir_all(&dir).unwrap();
    let mut c = Command::new(debug_bin("wilife-mkapk"));
    for key in [
        "name",
        "version",
        "description",
        "license",
        "origin",
        "maintainer",
        "url",
    ] {
        c.arg("--info").arg(format!("{key}:{}", text(key)));
    }
    c.arg("--info").arg(format!("arch:{arch}"));
    c.arg("--info")
        .arg(format!("depends:{}", depends.join(" ")));
    for (name, body) in scripts {
        let file = dir.join(name);
        fs::write(&file, body).unwrap();
        c.arg("--script").arg(format!("{name}:{}", file.display()));
    }
    // The time every file had in the package read back.
    let mtime = pkg["files"][0]["mtime"].as_u64().unwrap();
    let out_ok = c
        .arg("--files")
        .arg(tree)
        .arg("--output")
        .arg(out)
        .env("SOURCE_DATE_EPOCH", mtime.to_string())
        .output()
        .unwrap();
    assert!(out_ok.status.success(), "{out_ok:?}");
}

#[test]
fn packages_broken_on_purpose_are_refused_and_apk_shows_what_each_would_cost() {
    let good = apk("wilife-agent", "x86_64");
    let work = tempdir("broken");
    let tree = work.join("tree");
    let pkg = apk_read(&good, Some(&tree)).unwrap();
    let scripts = scripts_of(&pkg);
    // A variant of the good package: its tree copied and changed by `change`, then written anew.
    let variant = |name: &str,
                   arch: &str,
                   scripts: &BTreeMap<String, String>,
                   change: &dyn Fn(&Path)|
     -> PathBuf {
        let copy = work.join(name);
        let done = Command::new("cp")
            .args(["-a"])
            .arg(&tree)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(done.success());
        change(&copy);
        let out = work.join(format!("{name}.apk"));
        write_apk(&copy, &pkg, arch, scripts, &out);
        out
    };
    // Read back and written again, the same bytes: reader and writer agree on every field.
    let same = variant("same", "x86_64", &scripts, &|_| ());
    assert_eq!(fs::read(&same).unwrap(), fs::read(&good).unwrap());
    assert!(apk_check(&same).is_ok());

    let refused = |apk: &Path, why: &str| {
        let e = apk_check(apk).expect_err("refused");
        assert!(e.contains(why), "{}: {e}", apk.display());
    };
    let no_list = variant("no-list", "x86_64", &scripts, &|t| {
        fs::remove_file(t.join("lib/apk/packages/wilife-agent.list")).unwrap()
    });
    refused(&no_list, "wilife-agent.list is missing");
    refused(&variant("arch-all", "all", &scripts, &|_| ()), "arch 'all'");
    let chmod = |t: &Path| {
        let bin = t.join("usr/sbin/wilife-agent");
        let mut p = fs::metadata(&bin).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o644);
        fs::set_permissions(&bin, p).unwrap();
    };
    refused(
        &variant("binary-0644", "x86_64", &scripts, &chmod),
        "/usr/sbin/wilife-agent has mode 0644",
    );
    // opkg's scripts in an .apk: default_postinst takes the package name from $0.
    let ipk_dir = work.join("ipk");
    let ipk = Ipk::open(
        &wilife_lab::packages::ipk("wilife-agent", "x86_64"),
        &ipk_dir,
    );
    let opkg_postinst = fs::read_to_string(ipk_dir.join("control/postinst")).unwrap();
    let mut opkg_scripts = scripts.clone();
    for s in ["post-install", "post-upgrade"] {
        opkg_scripts.insert(s.into(), opkg_postinst.clone());
    }
    let opkg_style = variant("opkg-scripts", "x86_64", &opkg_scripts, &|_| ());
    refused(&opkg_style, "$0 is /proc/self/fd/N");
    assert!(ipk.field("Package") == "wilife-agent");
    // One byte of the binary changed after writing: its sha256 no longer holds.
    let raw = fs::read(&good).unwrap();
    assert_eq!(&raw[..4], b"ADBd");
    let mut stream = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::DeflateDecoder::new(&raw[4..]),
        &mut stream,
    )
    .unwrap();
    let at = stream
        .windows(4)
        .rposition(|w| w == b"\x7fELF")
        .expect("the binary's DATA block");
    stream[at + 100] ^= 0x55;
    let mut z = flate2::write::DeflateEncoder::new(b"ADBd".to_vec(), flate2::Compression::best());
    std::io::Write::write_all(&mut z, &stream).unwrap();
    let tampered = work.join("wrong-hash.apk");
    fs::write(&tampered, z.finish().unwrap()).unwrap();
    refused(&tampered, "/usr/sbin/wilife-agent: sha256 differs");
    assert!(apk_read(&tampered, None).is_err());

    // What apk would do with them on a router (the stand-in runs the scripts as apk does, with
    // OpenWrt's default_postinst): no list, or opkg's scripts, and the agent is never started.
    for (broken, what) in [(&no_list, "no .list"), (&opkg_style, "opkg's scripts")] {
        let (lab, root, did) = apk_added(broken);
        assert!(!did.contains(&Did::Started), "{what}: {did:?}");
        assert!(
            fs::read_link(root.dir.join(".rw/etc/upper/rc.d/S99wilife")).is_err(),
            "{what}: enabled"
        );
        assert!(lab.agent_pid().is_none(), "{what}");
    }
    // The good one, the same way: enabled and started.
    let (_lab, root, did) = apk_added(&good);
    assert_eq!(did, [Did::Started, Did::FirewallReloaded]);
    assert!(fs::read_link(root.dir.join(".rw/etc/upper/rc.d/S99wilife")).is_ok());
    let _ = fs::remove_dir_all(&work);
}

/// `apk add` of one package on a booted lab router whose wan and lan are up, and what procd did then.
fn apk_added(apk: &Path) -> (Lab, Root, Vec<Did>) {
    let mut lab = Lab::new();
    let root = Root::new(&lab.dir);
    root.boot(&lab);
    root.set_networks(&[
        ("wan", true, Some(WAN_DEV), Some(WAN_DEV)),
        ("lan", true, Some(LAN_DEV), Some(LAN_DEV)),
    ]);
    root.apk_add(&lab, apk);
    let did = Procd::default().act(&mut lab, &root);
    (lab, root, did)
}

/// Every router OpenWrt publishes packages for finds its file under its own arch name, or the README
/// and docs/PACKAGES.md say plainly that there is none and why.
#[test]
fn every_openwrt_arch_name_has_its_packages_or_a_stated_reason() {
    let built = ipk_archs();
    for arch in OPENWRT_ARCHS {
        assert!(
            built.iter().any(|b| b == arch) != NOT_BUILT.contains(&arch),
            "{arch}: built {} and listed as not built {}",
            built.iter().any(|b| b == arch),
            NOT_BUILT.contains(&arch)
        );
    }
    for arch in &built {
        assert!(
            OPENWRT_ARCHS.contains(&arch.as_str()),
            "{arch} is no OpenWrt arch name"
        );
    }
    let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
    let docs = fs::read_to_string(repo_root().join("docs/PACKAGES.md")).unwrap();
    for arch in OPENWRT_ARCHS {
        assert!(readme.contains(&format!("`{arch}`")), "README: {arch}");
        assert!(docs.contains(arch), "docs/PACKAGES.md: {arch}");
    }
}
