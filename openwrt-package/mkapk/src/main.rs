//! wilife-mkapk: writes one apk-tools v3 package from a staged tree, as `apk mkpkg` is called by
//! OpenWrt's include/package-pack.mk:
//!
//!   wilife-mkapk --info name:NAME --info version:VER-rREL --info arch:ARCH [--info KEY:VALUE...]
//!                --files DIR [--script TYPE:FILE...] --output FILE.apk
//!
//! KEY: name, version, description, arch, license, origin, maintainer, url, depends (apk words separated
//! by spaces), build-time. Every file is owned by root; with SOURCE_DATE_EPOCH set, every mtime is it.
//!
//!   wilife-mkapk gzip < FILE > FILE.gz
//!
//! gzip's format, compressed by Zopfli (no name, no time: the same input gives the same bytes), for
//! the .ipk's members.

use std::path::PathBuf;
use std::process::ExitCode;
use wilife_mkapk::{depend, package, tree};

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wilife-mkapk: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    if args.first().map(String::as_str) == Some("gzip") {
        return gzip();
    }
    let mut info = package::Info::default();
    let mut files: Option<PathBuf> = None;
    let mut output: Option<PathBuf> = None;
    let mut scripts = Vec::new();
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--info" => {
                let v = value()?;
                let (key, val) = v
                    .split_once(':')
                    .ok_or(format!("--info {v:?}: KEY:VALUE"))?;
                let val = val.to_string();
                match key {
                    "name" => info.name = val,
                    "version" => info.version = val,
                    "description" => info.description = val,
                    "arch" => info.arch = val,
                    "license" => info.license = val,
                    "origin" => info.origin = val,
                    "maintainer" => info.maintainer = val,
                    "url" => info.url = val,
                    "depends" => info.depends = depend::parse_list(&val)?,
                    "build-time" => {
                        info.build_time =
                            Some(val.parse().map_err(|_| format!("build-time {val:?}"))?)
                    }
                    other => return Err(format!("--info {other}: unknown (see --help)")),
                }
            }
            "--files" => files = Some(value()?.into()),
            "--output" => output = Some(value()?.into()),
            "--script" => {
                let v = value()?;
                let (kind, path) = v
                    .split_once(':')
                    .ok_or(format!("--script {v:?}: TYPE:FILE"))?;
                let text = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
                scripts.push((kind.to_string(), text));
            }
            "--help" | "-h" => {
                println!("{}", USAGE);
                return Ok(());
            }
            other => return Err(format!("{other}: unknown argument (see --help)")),
        }
    }
    let files = files.ok_or("--files DIR is required")?;
    let output = output.ok_or("--output FILE is required")?;
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Some(v.parse().map_err(|_| format!("SOURCE_DATE_EPOCH {v:?}"))?),
        Err(_) => None,
    };
    let dirs = tree::read(&files, epoch).map_err(|e| format!("{}: {e}", files.display()))?;
    let pkg = package::Package {
        info,
        dirs,
        scripts,
    };
    let stream = pkg.encode().map_err(|e| e.to_string())?;
    let apk = package::compress(&stream);
    // Written whole under another name first: an interrupted build leaves no half package.
    let partial = output.with_extension("apk.partial");
    std::fs::write(&partial, &apk)
        .and_then(|()| std::fs::rename(&partial, &output))
        .map_err(|e| format!("{}: {e}", output.display()))
}

/// stdin to stdout, gzip'd by Zopfli.
fn gzip() -> Result<(), String> {
    use std::io::{Read, Write};
    let mut data = Vec::new();
    std::io::stdin()
        .read_to_end(&mut data)
        .map_err(|e| format!("stdin: {e}"))?;
    let mut out = Vec::new();
    package::deflate(zopfli::Format::Gzip, &data, &mut out);
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| format!("stdout: {e}"))
}

const USAGE: &str =
    "usage: wilife-mkapk --info name:NAME --info version:VER-rREL --info arch:ARCH \
[--info KEY:VALUE...] --files DIR [--script TYPE:FILE...] --output FILE.apk
KEY: name version description arch license origin maintainer url depends build-time
TYPE: pre-install post-install pre-deinstall post-deinstall pre-upgrade post-upgrade trigger
       wilife-mkapk gzip < FILE > FILE.gz";
