#!/usr/bin/env python3
"""Writes po/templates/wilife.pot from the strings luci-app-wilife shows: every _('…') of the views and
the menu titles, as LuCI's i18n scanner would. Usage: luci-app/po/update-pot.py [--check]
(--check: exit 1 when the committed template is not what the sources give)."""
import json
import pathlib
import re
import sys

APP = pathlib.Path(__file__).resolve().parents[1]
POT = APP / "po/templates/wilife.pot"
CALL = re.compile(r"""_\(\s*'((?:[^'\\]|\\.)*)'""")


def unescape(s):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s)


def po_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def strings():
    found = {}
    for js in sorted((APP / "htdocs").rglob("*.js")):
        rel = js.relative_to(APP)
        for n, line in enumerate(js.read_text().splitlines(), 1):
            for m in CALL.finditer(line):
                found.setdefault(unescape(m.group(1)), []).append(f"{rel}:{n}")
    for menu in sorted((APP / "root/usr/share/luci/menu.d").glob("*.json")):
        rel = menu.relative_to(APP)
        for entry in json.loads(menu.read_text()).values():
            if "title" in entry:
                found.setdefault(entry["title"], []).append(str(rel))
    return found


def render():
    out = ['msgid ""', 'msgstr "Content-Type: text/plain; charset=UTF-8"', ""]
    for msgid, refs in sorted(strings().items()):
        out += [f"#: {r}" for r in refs] + [f"msgid {po_quote(msgid)}", 'msgstr ""', ""]
    return "\n".join(out)


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        ok = POT.exists() and POT.read_text() == text
        print("wilife.pot is up to date" if ok else "wilife.pot is stale: run luci-app/po/update-pot.py")
        sys.exit(0 if ok else 1)
    POT.write_text(text)
    print(f"{POT}: {text.count('msgid ') - 1} strings")
