#!/usr/bin/env python3
"""Renders the LuCI views of luci-app-wilife in a real headless Chromium (Debian's, driven by
Playwright from PyPI) on tests/luci/harness.html, whose stand-in runtime answers rpc calls with real
answers captured from the agent in the lab. Checks the verdict, the mapping rows, the cameras, that
Delete calls delete_mapping with the right arguments, and the settings form's validation; writes
screenshots.

usage: luci_views_check.py CAPTURED.json OUT_DIR
CAPTURED.json: {"cases": {"direct": {answers}, "relay": {answers}}, "config": "UCI text",
                "bad_config": "UCI text", "hints": {...}}
"""
import json
import pathlib
import sys

from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
VIEWS = ROOT / "luci-app/htdocs/luci-static/resources/view/wilife"
HARNESS = ROOT / "tests/luci/harness.html"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def uci_sections(text):
    """UCI text -> LuCI's uci.get_all shape: {name: {'.name', '.type', options...}}."""
    sections, current, anon = {}, None, 0
    for line in text.splitlines():
        parts = line.strip().split(None, 2)
        if not parts or parts[0].startswith("#"):
            continue
        unq = lambda v: v.strip().strip("'\"")
        if parts[0] == "config":
            name = unq(parts[2]) if len(parts) > 2 else f"cfg{anon:02d}"
            anon += len(parts) <= 2
            current = sections.setdefault(name, {".name": name, ".type": parts[1]})
        elif parts[0] in ("option", "list") and current is not None and len(parts) > 2:
            if parts[0] == "list":
                current.setdefault(parts[1], []).append(unq(parts[2]))
            else:
                current[parts[1]] = unq(parts[2])
    return sections


def main():
    captured = json.loads(pathlib.Path(sys.argv[1]).read_text())
    out = pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    status_src = (VIEWS / "status.js").read_text()
    settings_src = (VIEWS / "settings.js").read_text()
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        def show(source, answers, uci):
            page.goto(HARNESS.as_uri())
            page.evaluate("([a, u]) => { window.RPC_ANSWERS = a; window.UCI = u; }", [answers, uci])
            page.evaluate("(src) => showView(src)", source)

        uci = uci_sections(captured["config"])
        for case, answers in captured["cases"].items():
            show(status_src, answers, uci)
            verdict = page.inner_text("#wilife-verdict")
            d = answers["luci.wilife.diagnosis"]
            if case == "direct":
                want = f"Remote viewing: direct, via {d['external']['address']}:{d['external']['ports'][0]}"
                check(verdict == want, f"{case}: verdict {verdict!r} == {want!r}")
                rows = page.locator("#wilife-status table").nth(0).locator("tr.tr:not(.table-titles)")
                check(rows.count() == 1, f"{case}: one mapping row ({rows.count()})")
                row = rows.nth(0).inner_text()
                check("192.168.50.10" in row and "TCP 20570" in row and "WiLife" in row,
                      f"{case}: mapping row {row!r}")
                page.click("button[data-port='20570']")
                page.wait_for_function("window.RPC_CALLS.some(c => c.method === 'delete_mapping')")
                calls = page.evaluate("window.RPC_CALLS.filter(c => c.method === 'delete_mapping')")
                check(calls == [{"object": "luci.wilife", "method": "delete_mapping",
                                 "args": {"protocol": "tcp", "port": 20570}}],
                      f"{case}: Delete calls delete_mapping(tcp, 20570): {calls}")
            else:
                want = "Remote viewing: relay only — " + d["reasons"][0]["message"]
                check(verdict == want, f"{case}: verdict {verdict!r}")
                check("10.0.0.2 is private" in verdict and "double NAT" in verdict, f"{case}: says why")
                code = page.get_attribute("#wilife-verdict", "data-reason")
                check(code == "wan_private", f"{case}: reason code {code!r}")
            cams = page.locator("#wilife-status table").nth(1).inner_text()
            check("porch" in cams and "0a:00:00:00:00:20" in cams and "present" in cams,
                  f"{case}: camera row {cams!r}")
            fw = page.locator("#wilife-status table").nth(2).inner_text()
            check("inet wilife, bridge wilife" in fw and "active" in fw, f"{case}: firewall {fw!r}")
            page.evaluate("Promise.all(window.POLLS.map(f => f()))")
            check(page.inner_text("#wilife-verdict") == verdict, f"{case}: poll refresh keeps the page")
            page.screenshot(path=str(out / f"status-{case}.png"), full_page=True)

        hints = {"luci-rpc.getHostHints": captured["hints"]}
        show(settings_src, hints, uci)
        cc_ip = page.input_value("fieldset[data-section='command_center'] input[data-option='ip']")
        check(cc_ip == "192.168.50.10", f"settings: Command Center ip {cc_ip!r}")
        cam_mac = page.input_value("fieldset[data-section='camera'] input[data-option='mac']")
        check(cam_mac == "0a:00:00:00:00:20", f"settings: camera mac {cam_mac!r}")
        invalid = page.eval_on_selector_all(".cbi-input-invalid", "l => l.map(x => x.dataset.option)")
        check(invalid == [], f"settings: the agent-accepted config shows no invalid field ({invalid})")
        page.screenshot(path=str(out / "settings.png"), full_page=True)
        show(settings_src, hints, uci_sections(captured["bad_config"]))
        invalid = page.eval_on_selector_all(".cbi-input-invalid",
                                            "l => l.map(x => [x.dataset.option, x.dataset.error])")
        check([o for o, _ in invalid] == captured["bad_options"],
              f"settings: the form rejects what `wilife-agent check` rejects: {invalid}")
        page.screenshot(path=str(out / "settings-invalid.png"), full_page=True)
        check(not errors, f"no script errors: {errors}")
        browser.close()
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
