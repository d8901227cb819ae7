#!/usr/bin/env python3
"""Checks an .apk against what OpenWrt 25.12's own build puts into a package (include/package-pack.mk)
and what its routers rely on, reading it with the independent reader (apk_read.py):

- info: name, a version PKG_VERSION-rPKG_RELEASE, an arch apk accepts (never "all": apk takes it for a
  foreign arch; arch-independent packages are "noarch", and hold no binary), description, license,
  origin, url, maintainer; depends as apk words;
- every file and directory owned by root; programs, init scripts and uci-defaults executable;
- /lib/apk/packages/NAME.list: every file and link of the package, sorted (default_postinst finds the
  uci-defaults and init scripts there: without it the service is never enabled or started);
  NAME.conffiles and NAME.conffiles_static (each shipped conffile with its sha256), for sysupgrade;
- the maintainer scripts in OpenWrt's form: post-install, post-upgrade and pre-deinstall source
  /lib/functions.sh, `export pkgname="NAME"` (apk runs a script as /proc/self/fd/N: $0 names no
  package), and call default_postinst / default_prerm without arguments; post-upgrade sets
  PKG_UPGRADE=1 first.

    openwrt_apk_check.py FILE.apk     prints the package as apk_read.py does, or why it is refused (exit 1)
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apk_read  # noqa: E402


class Refused(Exception):
    pass


EXECUTABLE_DIRS = ("/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/", "/etc/init.d/", "/etc/uci-defaults/",
                   "/usr/libexec/")
SOURCE_FUNCTIONS = ". ${IPKG_INSTROOT}/lib/functions.sh"


def check(path):
    pkg, contents = apk_read.read_with_contents(path)
    info = pkg["info"]
    name = info["name"]
    if not re.fullmatch(r"[0-9][0-9A-Za-z._~]*-r[0-9]+", info["version"]):
        raise Refused("version %r is not PKG_VERSION-rPKG_RELEASE" % info["version"])
    arch = info.get("arch", "")
    if not arch or arch == "all":
        raise Refused("arch %r: apk installs only the router's arch names or noarch" % arch)
    for field in ("description", "license", "origin", "url", "maintainer"):
        if not info.get(field):
            raise Refused("info.%s is empty" % field)
    for dep in info.get("depends", []):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9+._-]*", dep["name"]):
            raise Refused("depends %r is not an apk word" % dep["name"])
    for entry in pkg["dirs"] + pkg["files"]:
        if (entry["user"], entry["group"]) != ("root", "root"):
            raise Refused("%s is owned by %s:%s, not root" % (entry["path"], entry["user"],
                                                              entry["group"]))
    files = {f["path"]: f for f in pkg["files"]}
    for f in pkg["files"]:
        if "symlink" in f:
            continue
        content = contents.get(f["path"], b"")
        program = content[:4] == b"\x7fELF" or content[:2] == b"#!"
        if content[:4] == b"\x7fELF" and arch == "noarch":
            raise Refused("%s is a binary in a noarch package" % f["path"])
        if (program or f["path"].startswith(EXECUTABLE_DIRS)) and f["mode"] & 0o111 != 0o111:
            raise Refused("%s has mode %04o: a program must be executable (0755)" % (f["path"],
                                                                                  f["mode"]))
    check_lists(name, files, contents)
    check_scripts(name, pkg["scripts"])
    return pkg


def text(contents, path):
    return contents.get(path, b"").decode()


def check_lists(name, files, contents):
    meta = "/lib/apk/packages/%s." % name
    if meta + "list" not in files:
        raise Refused("%slist is missing: default_postinst would never run the uci-defaults, nor "
                      "enable and start the service" % meta)
    listed = text(contents, meta + "list").splitlines()
    if listed != sorted(set(listed)):
        raise Refused("%slist is not sorted and unique" % meta)
    own = {meta + s for s in ("list", "conffiles", "conffiles_static")}
    want = sorted(p for p in files if p not in own)
    if listed != want:
        missing = sorted(set(want) - set(listed))
        extra = sorted(set(listed) - set(want))
        raise Refused("%slist differs from the files: missing %s, not in the package %s"
                      % (meta, missing, extra))
    conffiles = text(contents, meta + "conffiles").splitlines()
    static = {}
    for line in text(contents, meta + "conffiles_static").splitlines():
        fields = line.split(" ")
        if len(fields) != 2 or not re.fullmatch(r"[0-9a-f]{64}", fields[1]):
            raise Refused("%sconffiles_static line %r is not PATH SHA256" % (meta, line))
        static[fields[0]] = fields[1]
    for c in conffiles:
        if not c.startswith("/etc/"):
            raise Refused("conffile %r is not under /etc" % c)
        shipped = files.get(c)
        if shipped and "sha256" in shipped and static.get(c) != shipped["sha256"]:
            raise Refused("%sconffiles_static has no or a wrong sha256 for %s" % (meta, c))
    if set(static) - set(conffiles):
        raise Refused("%sconffiles_static names files that are no conffiles" % meta)


def check_scripts(name, scripts):
    export = 'export pkgname="%s"' % name
    calls = {"post-install": "default_postinst", "post-upgrade": "default_postinst",
             "pre-deinstall": "default_prerm"}
    for script, call in calls.items():
        body = scripts.get(script)
        if body is None:
            raise Refused("no %s script" % script)
        lines = body.splitlines()
        if lines[0] != "#!/bin/sh":
            raise Refused("%s does not start with #!/bin/sh" % script)
        called = [i for i, l in enumerate(lines) if l.split()[:1] == [call]]
        if not called:
            raise Refused("%s never calls %s" % (script, call))
        first = called[0]
        if lines[first] != call:
            raise Refused("%s calls %r: under apk $0 is /proc/self/fd/N and names no package"
                          % (script, lines[first].strip()))
        if SOURCE_FUNCTIONS not in lines[:first] or export not in lines[:first]:
            raise Refused("%s does not source functions.sh and %s before %s" % (script, export,
                                                                               call))
        if script == "post-upgrade" and "export PKG_UPGRADE=1" not in lines[:first]:
            raise Refused("post-upgrade does not export PKG_UPGRADE=1 before %s" % call)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    return apk_read.cli("openwrt_apk_check", argv[1], check, (apk_read.Broken, Refused))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
