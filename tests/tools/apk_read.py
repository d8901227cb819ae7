#!/usr/bin/env python3
"""An independent reader of apk-tools v3 packages (ADB, apk-v3(5) and apk-package(5)).

Written apart from the project's writer (openwrt-package/mkapk) and sharing nothing with it, so that a
package is checked by a second reading of the format, as apk itself reads it: the framing and its
padding, the block order, every value word against the package schema (types, field counts, offsets
inside the block), the unique id, each DATA block in tree order with its size and sha256.

    apk_read.py FILE.apk                 prints the package as JSON (info, scripts, dirs, files)
    apk_read.py FILE.apk --extract DIR   also writes its files into DIR with their modes

Exit status 1 and one line on stderr for anything apk would refuse or read otherwise.
"""

import hashlib
import json
import os
import struct
import sys
import zlib


class Broken(Exception):
    pass


# Value word types (top nibble).
SPECIAL, INT, INT_32, INT_64 = 0x0, 0x1, 0x2, 0x3
BLOB_8, BLOB_16, BLOB_32 = 0x8, 0x9, 0xA
ARRAY, OBJECT = 0xD, 0xE

# Block types.
ADB, SIG, DATA, EXTENDED = 0, 1, 2, 3

# The schema, field by field (1-based): (name, kind). Kinds: "str", "hex", "int", an object schema
# name, or ("array", element kind).
SCHEMAS = {
    "package": [("info", "info"), ("paths", ("array", "dir")), ("scripts", "scripts"),
                ("triggers", ("array", "str")), ("replaces-priority", "int")],
    "info": [("name", "str"), ("version", "str"), ("hashes", "hex"), ("description", "str"),
             ("arch", "str"), ("license", "str"), ("origin", "str"), ("maintainer", "str"),
             ("url", "str"), ("repo-commit", "hex"), ("build-time", "int"),
             ("installed-size", "int"), ("file-size", "int"), ("provider-priority", "int"),
             ("depends", ("array", "dependency")), ("provides", ("array", "dependency")),
             ("replaces", ("array", "dependency")), ("install-if", ("array", "dependency")),
             ("recommends", ("array", "dependency")), ("layer", "int"), ("tags", ("array", "str"))],
    "dependency": [("name", "str"), ("version", "str"), ("match", "int")],
    "dir": [("name", "str"), ("acl", "acl"), ("files", ("array", "file"))],
    "file": [("name", "str"), ("acl", "acl"), ("size", "int"), ("mtime", "int"), ("hash", "hex"),
             ("target", "hex")],
    "acl": [("mode", "int"), ("user", "str"), ("group", "str"), ("xattrs", ("array", "hex"))],
    "scripts": [(n, "str") for n in ("trigger", "pre-install", "post-install", "pre-deinstall",
                                     "post-deinstall", "pre-upgrade", "post-upgrade")],
}


def unpack_envelope(raw):
    """The uncompressed stream of a file, and the compression it used."""
    if raw[:4] == b"ADB.":
        return raw, "none"
    if raw[:4] == b"ADBd":
        alg, body = 1, raw[4:]
    elif raw[:4] == b"ADBc" and len(raw) >= 6:
        alg, body = raw[4], raw[6:]
    else:
        raise Broken("not an APKv3 package (no ADB magic): %r" % raw[:4])
    if alg == 0:
        return body, "none"
    if alg != 1:
        raise Broken("compression %d is not raw deflate" % alg)
    z = zlib.decompressobj(-15)
    try:
        stream = z.decompress(body) + z.flush()
    except zlib.error as e:
        raise Broken("deflate stream: %s" % e)
    if not z.eof or z.unused_data:
        raise Broken("deflate stream: cut short or followed by other bytes")
    return stream, "deflate"


def blocks(stream):
    """(type, payload) of each block after the file header; the padding must be there and zero."""
    if len(stream) < 8 or stream[:4] != b"ADB.":
        raise Broken("stream does not start with ADB.")
    if stream[4:8] != b"pckg":
        raise Broken("schema %r is not a package (pckg)" % stream[4:8])
    at, out = 8, []
    while at < len(stream):
        if at + 4 > len(stream):
            raise Broken("block header cut short at %d" % at)
        (word,) = struct.unpack_from("<I", stream, at)
        kind, size, header = word >> 30, word & 0x3FFFFFFF, 4
        if kind == EXTENDED:
            if at + 16 > len(stream):
                raise Broken("extended block header cut short at %d" % at)
            kind = word & 0x3FFFFFFF
            (size,) = struct.unpack_from("<Q", stream, at + 8)
            header = 16
        if size < header or at + size > len(stream):
            raise Broken("block at %d: size %d does not fit" % (at, size))
        padded = (size + 7) // 8 * 8
        if at + padded > len(stream):
            raise Broken("block at %d: its padding is missing (apk: unexpected end of file)" % at)
        if any(stream[at + size:at + padded]):
            raise Broken("block at %d: padding is not zero" % at)
        out.append((kind, stream[at + header:at + size]))
        at += padded
    order = [k for k, _ in out]
    if not order or order[0] != ADB or ADB in order[1:]:
        raise Broken("the first block, and only it, must be the ADB block: %s" % order)
    seen_data = False
    for k in order[1:]:
        if k == DATA:
            seen_data = True
        elif k != SIG or seen_data:
            raise Broken("block order %s: after ADB come signatures, then data only" % order)
    return out


class Heap:
    def __init__(self, payload):
        if len(payload) < 8:
            raise Broken("ADB block too short")
        if payload[0] != 0:
            raise Broken("ADB compat version %d (apk: incompatible ADB version)" % payload[0])
        self.b = payload

    def word(self, at):
        if at < 8 or at + 4 > len(self.b):
            raise Broken("offset %d outside the ADB block" % at)
        return struct.unpack_from("<I", self.b, at)[0]

    def int(self, v):
        kind, off = v >> 28, v & 0x0FFFFFFF
        if kind == INT:
            return off
        if kind == INT_32:
            return self.word(off)
        if kind == INT_64:
            if off + 8 > len(self.b):
                raise Broken("INT_64 outside the block")
            return struct.unpack_from("<Q", self.b, off)[0]
        raise Broken("value %08x is not an integer" % v)

    def blob(self, v):
        kind, off = v >> 28, v & 0x0FFFFFFF
        width = {BLOB_8: 1, BLOB_16: 2, BLOB_32: 4}.get(kind)
        if width is None:
            raise Broken("value %08x is not a blob" % v)
        if off < 8 or off + width > len(self.b):
            raise Broken("blob length outside the block")
        n = int.from_bytes(self.b[off:off + width], "little")
        if off + width + n > len(self.b):
            raise Broken("blob of %d bytes at %d runs past the block" % (n, off))
        return self.b[off + width:off + width + n], off + width

    def slots(self, v, limit):
        kind, off = v >> 28, v & 0x0FFFFFFF
        if kind not in (ARRAY, OBJECT):
            raise Broken("value %08x is not an object or array" % v)
        n = self.word(off)
        if n < 1 or n - 1 > limit or off + 4 * n > len(self.b):
            raise Broken("vector at %d: %d slots" % (off, n))
        return [self.word(off + 4 * i) for i in range(1, n)]

    def decode(self, v, kind, where):
        if v == 0:
            return None
        if kind == "int":
            return self.int(v)
        if kind in ("str", "hex"):
            data, _ = self.blob(v)
            if kind == "hex":
                return data.hex()
            try:
                return data.decode()
            except UnicodeDecodeError:
                raise Broken("%s: not UTF-8" % where)
        if isinstance(kind, tuple):
            return [self.decode(item, kind[1], where) for item in self.slots(v, 1 << 20)
                    if item != 0]
        fields = SCHEMAS[kind]
        values = self.slots(v, len(fields))
        obj = {}
        for (name, sub), item in zip(fields, values):
            value = self.decode(item, sub, "%s.%s" % (where, name))
            if value is not None:
                obj[name] = value
        return obj


def unique_id_ok(heap, root):
    """mkpkg's unique id: sha256 of the ADB payload with the id's own bytes zeroed, first 20 bytes.
    None where there is none (apk then takes the block's sha256)."""
    package = heap.slots(root, len(SCHEMAS["package"]))
    info = heap.slots(package[0], len(SCHEMAS["info"])) if package and package[0] else []
    hashes = info[2] if len(info) >= 3 else 0
    if hashes == 0:
        return None
    data, at = heap.blob(hashes)
    if len(data) != 20:
        return len(data) in (32, 64)
    zeroed = heap.b[:at] + bytes(20) + heap.b[at + 20:]
    return hashlib.sha256(zeroed).digest()[:20] == data


def read(path, extract_to=None):
    """The package as JSON-ready values; see read_with_contents."""
    return read_with_contents(path, extract_to)[0]


def read_with_contents(path, extract_to=None):
    """(the package, {path: bytes} of its non-empty regular files)."""
    with open(path, "rb") as f:
        raw = f.read()
    stream, compression = unpack_envelope(raw)
    bl = blocks(stream)
    heap = Heap(bl[0][1])
    (root,) = struct.unpack_from("<I", heap.b, 4)
    pkg = heap.decode(root, "package", "package")
    if not pkg or "info" not in pkg:
        raise Broken("no package info")
    info = pkg["info"]
    for field in ("name", "version"):
        if not info.get(field):
            raise Broken("info.%s is missing" % field)
    if unique_id_ok(heap, root) is False:
        raise Broken("info.hashes is not the package's unique id")
    dirs, files, expect = [], [], []
    for d_i, d in enumerate(pkg.get("paths", []), 1):
        path = d.get("name", "")
        if path.startswith("/") or any(c in ("", ".", "..") for c in path.split("/") if path):
            raise Broken("directory %r: not a plain relative path" % path)
        acl = d.get("acl") or {}
        dirs.append({"path": "/" + path, "mode": acl.get("mode"), "user": acl.get("user"),
                     "group": acl.get("group")})
        for f_i, f in enumerate(d.get("files", []), 1):
            name = f.get("name", "")
            if not name or "/" in name or name in (".", ".."):
                raise Broken("file name %r in %r" % (name, path))
            facl = f.get("acl") or {}
            entry = {"path": "/" + (path + "/" if path else "") + name, "mode": facl.get("mode"),
                     "user": facl.get("user"), "group": facl.get("group"),
                     "size": f.get("size", 0), "mtime": f.get("mtime")}
            if "target" in f:
                target = bytes.fromhex(f["target"])
                if len(target) < 2 or int.from_bytes(target[:2], "little") != 0o120000:
                    raise Broken("%s: only symlinks are expected as targets" % entry["path"])
                entry["symlink"] = target[2:].decode()
            else:
                if len(f.get("hash", "")) != 64:
                    raise Broken("%s: no sha256 (apk: ADB schema error)" % entry["path"])
                entry["sha256"] = f["hash"]
                if entry["size"]:
                    expect.append((d_i, f_i, entry))
            files.append(entry)
    contents = {}
    data = [p for k, p in bl if k == DATA]
    if len(data) != len(expect):
        raise Broken("%d DATA blocks for %d non-empty files (apk: ADB block error)"
                     % (len(data), len(expect)))
    for payload, (d_i, f_i, entry) in zip(data, expect):
        if len(payload) < 8 or struct.unpack_from("<II", payload) != (d_i, f_i):
            raise Broken("DATA block for %s is not next in tree order (apk: ADB block error)"
                         % entry["path"])
        content = payload[8:]
        if len(content) != entry["size"]:
            raise Broken("%s: %d bytes of data, size says %d" % (entry["path"], len(content),
                                                                entry["size"]))
        if hashlib.sha256(content).hexdigest() != entry["sha256"]:
            raise Broken("%s: sha256 differs (apk: file integrity error)" % entry["path"])
        contents[entry["path"]] = content
    for entry in files:
        if "sha256" in entry and not entry["size"] \
                and entry["sha256"] != hashlib.sha256(b"").hexdigest():
            raise Broken("%s: empty, but its hash is not that of nothing" % entry["path"])
    if extract_to:
        extract(extract_to, dirs, files, contents)
    return ({"compression": compression, "info": info, "scripts": pkg.get("scripts", {}),
             "dirs": dirs, "files": files}, contents)


def extract(to, dirs, files, contents):
    for d in dirs:
        os.makedirs(to + d["path"], exist_ok=True)
        if d["path"] != "/":
            os.chmod(to + d["path"], d["mode"])
    for f in files:
        dest = to + f["path"]
        if os.path.lexists(dest):
            os.unlink(dest)
        if "symlink" in f:
            os.symlink(f["symlink"], dest)
            continue
        with open(dest, "wb") as out:
            out.write(contents.get(f["path"], b""))
        os.chmod(dest, f["mode"])


def cli(tool, path, action, refusals):
    """Prints what ACTION(PATH) returns as JSON, or TOOL's one-line refusal; the exit status."""
    try:
        pkg = action(path)
    except refusals as e:
        sys.stderr.write("%s: %s: %s\n" % (tool, path, e))
        return 1
    json.dump(pkg, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--extract"):
        sys.stderr.write(__doc__)
        return 2
    return cli("apk_read", argv[1], lambda p: read(p, argv[3] if len(argv) == 4 else None), Broken)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
