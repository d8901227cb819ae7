#!/usr/bin/env python3
"""Renders the LuCI views of luci-app-wilife in a real headless Chromium (Debian's, driven by
Playwright from PyPI) on tests/luci/harness.html, whose stand-in runtime behaves like LuCI's own (see
tests/luci/luci-stub.js) and answers rpc calls with real answers captured from the agent in the lab.
Checks the verdict, the mapping rows, the cameras, Delete; that markup in any value from the agent is
shown as text and never runs; that each failed ubus call (bare status 2, 7, access denied) spoils only
its own section, readably; the refused reload; a read-only session; the settings form's validation
(held to `wilife-agent check`) and that saving the shipped config unchanged stages nothing; the
Status -> Overview include. No page may raise an uncaught error. Writes screenshots.

usage: luci_views_check.py CAPTURED.json OUT_DIR
CAPTURED.json: {"cases": {"direct": {answers}, "relay": {answers}}, "config": "UCI text",
                "bad_config": "UCI text", "bad_options": [...], "hints": {...}, "hostile": "markup",
                "reload_status": {status answer}, "no_address_config": "UCI text",
                "shipped_config": "UCI text"}
"""
import copy
import json
import pathlib
import sys

from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESOURCES = ROOT / "luci-app/htdocs/luci-static/resources"
VIEWS = RESOURCES / "view/wilife"
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
    overview_src = (RESOURCES / "view/status/include/75_wilife.js").read_text()
    modules = {"wilife": (RESOURCES / "wilife.js").read_text()}
    hostile = captured["hostile"]
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(5000)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))

        def settle():
            """Lets the first poll run, an image fail to load and its onerror fire."""
            page.wait_for_timeout(150)

        def show(source, answers, uci, readonly=False, fn="showView", packages=None):
            """Loads the harness and shows a view; False (and a failure) when it did not come up."""
            page.goto(HARNESS.as_uri())
            page.evaluate("([a, u, r, m, p]) => { window.RPC_ANSWERS = a; window.UCI = u; window.READONLY = r;"
                          " window.MODULE_SOURCES = m; window.UCI_PACKAGES = p; }",
                          [answers, uci, readonly, modules, packages or {}])
            try:
                page.evaluate(f"(src) => {fn}(src)", source)
            except Exception as e:  # the view did not come up: LuCI would show "Loading view..." forever
                check(False, f"the view comes up: {e}")
                return False
            settle()
            return True

        def shown(selector, nth=0):
            """The text of an element; '' when there is none."""
            found = page.locator(selector)
            return found.nth(nth).inner_text() if found.count() > nth else ""

        def no_errors(case):
            seen = errors + page.evaluate("window.ERRORS")
            check(not seen, f"{case}: no uncaught errors {seen}")
            errors.clear()

        def not_run(case):
            pwned = page.evaluate("window.PWNED")
            check(pwned is None, f"{case}: markup from the agent did not run (window.PWNED = {pwned!r})")

        uci = uci_sections(captured["config"])
        direct = captured["cases"]["direct"]
        for case, answers in captured["cases"].items():
            show(status_src, answers, uci)
            verdict = page.inner_text("#wilife-verdict")
            d = answers["luci.wilife.diagnosis"]
            asked = [c["method"] for c in page.evaluate("window.RPC_CALLS")]
            check("remedy" not in asked, f"{case}: no remedy is asked for while the rules see every camera {asked}")
            if case == "direct":
                want = f"Remote viewing: direct, via {wan_address(d)}"
                check(verdict == want, f"{case}: verdict {verdict!r} == {want!r}")
                rows = page.locator("#wilife-status table").nth(0).locator("tr.tr:not(.table-titles)")
                check(rows.count() == 2, f"{case}: two mapping rows ({rows.count()})")
                row = rows.nth(0).inner_text()
                check("192.168.50.10" in row and "TCP 20570" in row and "WiLife" in row,
                      f"{case}: mapping row {row!r}")
                # The description a LAN client sent with markup, through the agent and rpcd: text.
                row = rows.nth(1).inner_text()
                check("TCP 20571" in row and captured["stored_hostile"] in row,
                      f"{case}: the hostile description as text {row!r}")
                not_run(case)
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
                # Double NAT: the gateway upstream's section says where it stands.
                state = page.get_attribute("#wilife-upstream", "data-state")
                want = answers["luci.wilife.status"]["upstream"].get("idle")
                check(state == want, f"{case}: upstream section state {state!r} == {want!r}")
            if case == "direct":
                check(page.locator("#wilife-upstream").count() == 0, f"{case}: no upstream section")
            cams = page.locator("#wilife-status table").nth(1).inner_text()
            check("porch" in cams and "0a:00:00:00:00:20" in cams and "present" in cams,
                  f"{case}: camera row {cams!r}")
            fw = page.locator("#wilife-status table").nth(2).inner_text()
            check("inet wilife, bridge wilife" in fw and "active" in fw, f"{case}: firewall {fw!r}")
            check(page.locator("#wilife-reload-error").count() == 0, f"{case}: no reload error shown")
            page.evaluate("Promise.all(window.POLLS.map(f => f()))")
            check(page.inner_text("#wilife-verdict") == verdict, f"{case}: poll refresh keeps the page")
            page.screenshot(path=str(out / f"status-{case}.png"), full_page=True)
            no_errors(case)

        # Markup in every value from the agent or the config: names, reasons, errors. Shown, never run.
        h = copy.deepcopy(direct)
        h["luci.wilife.mappings"]["mappings"][0]["owner"] = hostile           # the Command Center's name
        h["luci.wilife.cameras"]["cameras"][0]["name"] = hostile
        h["luci.wilife.diagnosis"]["summary"] = hostile
        h["luci.wilife.diagnosis"]["reasons"] = [{"code": "fw4_include_missing", "severity": "warning",
                                                  "message": hostile}]
        h["luci.wilife.status"]["config"]["reload_error"] = hostile
        h["luci.wilife.status"]["firewall"]["last_reconcile"] = {
            "at": 0, "reason": hostile, "result": "error", "error": hostile, "duration_ms": 1}
        h["luci.wilife.delete_mapping"] = {"error": hostile, "status": 404}
        h["luci.wilife.status"]["upstream"] = {
            "mode": "auto", "gateway": hostile, "wan_address": hostile, "missing": [20571],
            "standing": {"state": "refused", "protocol": hostile, "code": 2, "name": hostile},
            "mappings": [{"port": 20570, "external_port": 20570, "protocol": hostile,
                          "lifetime_s": 3600, "expires_in_s": 3000}]}
        show(status_src, h, uci)
        page.click("button[data-port='20570']")
        page.wait_for_function("window.RPC_CALLS.some(c => c.method === 'delete_mapping')")
        settle()
        not_run("hostile")
        texts = {
            "mapping owner": shown("#wilife-status table", 0),
            "camera name": shown("#wilife-status table", 1),
            "summary": shown("#wilife-summary"),
            "reasons": shown("#wilife-reasons"),
            "reload error": shown("#wilife-reload-error"),
            "firewall error": shown("#wilife-status table", 2),
            "delete notification": shown("#notifications"),
            "gateway upstream": shown("#wilife-upstream"),
        }
        for what, said in texts.items():
            check(hostile in said, f"hostile: the {what} shows the markup as text: {said!r}")
        page.screenshot(path=str(out / "status-hostile.png"), full_page=True)
        no_errors("hostile")
        for method in ["diagnosis", "cameras"]:
            f = copy.deepcopy(direct)
            f[f"luci.wilife.{method}"] = {"error": hostile}
            show(status_src, f, uci)
            not_run(f"hostile error from {method}")
            check(hostile in shown(".wilife-failed"), f"hostile: the {method} failure shows it as text")
            no_errors(f"hostile error from {method}")
        hd = copy.deepcopy(direct)
        hd["luci.wilife.diagnosis"]["direct_possible"] = False
        hd["luci.wilife.diagnosis"]["reasons"] = [{"code": "wan_private", "severity": "blocking", "message": hostile}]
        show(status_src, hd, uci)
        not_run("hostile verdict")
        check(shown("#wilife-verdict") == "Remote viewing: relay only — " + hostile,
              "hostile: the verdict shows the reason as text")
        no_errors("hostile verdict")

        # A camera a hardware switch hides (the MT7621 snapshot: camera on lan2, PC on lan3), with the
        # agent's real verdicts and remedy for it: one sentence, the fix, a confirmation, then the
        # changes staged as uci.js stages them and applied with rollback.
        sw = captured["switching"]
        b = copy.deepcopy(direct)
        where = sw["verdicts"][0]
        worst = next(p for p in where["paths"] if p["verdict"] == "bypassed_by_switch")
        b["luci.wilife.cameras"]["cameras"][0].update(
            verdict="bypassed_by_switch", verdict_message=worst["message"], port=where["port"], paths=where["paths"])
        b["luci.wilife.remedy"] = sw["remedy"]
        packages = {name: list(uci_sections(text).values()) for name, text in sw["files"].items()}
        packages["wilife"] = list(uci.values())
        show(status_src, b, uci, packages=packages)
        said = page.eval_on_selector_all(".wilife-switching", "l => l.map(x => x.innerText)")
        check(said == [worst["message"]], f"bypassed: the camera's sentence {said}")
        check("switched in hardware" in worst["message"] and "lan3" in worst["message"],
              f"bypassed: the sentence names the ports: {worst['message']!r}")
        cams = shown("#wilife-status table", 1)
        check("bypassed by the switch" in cams, f"bypassed: the camera rules column {cams!r}")
        fix = shown("#wilife-remedy")
        plan = sw["remedy"]["plan"]
        check("lan2" in fix and plan["address"] in fix, f"bypassed: the fix says what moves {fix!r}")
        calls = [c["method"] for c in page.evaluate("window.RPC_CALLS")]
        check(calls.count("remedy") == calls.count("cameras") > 0, f"bypassed: the remedy is asked for once per load {calls}")
        page.screenshot(path=str(out / "status-bypassed.png"), full_page=True)
        page.click("#wilife-remedy-move")
        modal = shown("#modal")
        check("rollback" in modal and str(len(plan["changes"])) in modal, f"bypassed: the confirmation {modal!r}")
        check(page.evaluate("window.APPLIED.length") == 0, "bypassed: nothing is applied before the confirmation")
        page.screenshot(path=str(out / "status-remedy-confirm.png"), full_page=True)
        page.click("#wilife-remedy-apply")
        page.wait_for_function("window.APPLIED.length > 0")
        applied = page.evaluate("window.APPLIED")
        check(len(applied) == 1 and applied[0]["checked"] is True, f"bypassed: applied with rollback {applied}")
        staged = applied[0]["staged"]
        check(len(staged) == len(plan["changes"]), f"bypassed: every change staged ({len(staged)} of {len(plan['changes'])})")
        after = copy.deepcopy(packages)
        for change in staged:
            if change[0] == "add":
                after[change[1]].append({".name": change[3], ".type": change[2]})
            else:
                _, conf, sid, opt, val = change
                next(x for x in after[conf] if x[".name"] == sid)[opt] = val
        device = lambda name: next(x for x in after["network"] if x[".type"] == "device" and x.get("name") == name)
        check(device("br-lan")["ports"] == ["lan1", "lan3", "lan4"], f"bypassed: br-lan keeps the others {device('br-lan')}")
        check(device("br-wilifecam")["ports"] == ["lan2"], "bypassed: the camera's port in its own bridge")
        lan = next(x for x in after["network"] if x[".name"] == "lan")
        check(lan["device"] == "br-lan" and lan["ipaddr"] == "192.168.1.1", f"bypassed: lan untouched {lan}")
        main = next(x for x in after["wilife"] if x[".name"] == "main")
        check(main.get("camera_network") == ["wilifecam"], f"bypassed: the agent relays for it {main}")
        check(page.locator("#modal").count() == 0, "bypassed: the dialog closes")
        no_errors("bypassed")
        # A read-only session sees the fix, and cannot start it.
        show(status_src, b, uci, readonly=True, packages=packages)
        disabled = page.eval_on_selector_all("#wilife-remedy button", "l => l.map(b => b.disabled)")
        check(disabled and all(disabled), f"read-only: the fix's buttons disabled {disabled}")
        no_errors("bypassed, read-only")
        # Where no router can help (camera and PC behind one port), the reason, and no button.
        n = copy.deepcopy(b)
        n["luci.wilife.remedy"] = sw["refused"]
        show(status_src, n, uci, packages=packages)
        check(shown("#wilife-remedy") == sw["refused"]["reason"], f"refused: says why {shown('#wilife-remedy')!r}")
        check(page.locator("#wilife-remedy button").count() == 0, "refused: no button")
        no_errors("refused")
        # Markup in the sentence, the notes, and a remedy call that failed: text, readably.
        h = copy.deepcopy(b)
        h["luci.wilife.cameras"]["cameras"][0]["verdict_message"] = hostile
        h["luci.wilife.remedy"]["plan"]["notes"] = [hostile]
        show(status_src, h, uci, packages=packages)
        page.click("#wilife-remedy-move")
        not_run("hostile switching")
        check(hostile in shown(".wilife-switching") and hostile in shown("#wilife-remedy")
              and hostile in shown("#modal"), "hostile: the sentence and notes show the markup as text")
        no_errors("hostile switching")
        f = copy.deepcopy(b)
        f["luci.wilife.remedy"] = 7
        show(status_src, f, uci, packages=packages)
        check("Request timeout" in shown("#wilife-remedy"), f"remedy fails: says so {shown('#wilife-remedy')!r}")
        no_errors("remedy fails")

        # One failed call at a time: its section says why, readably; the others render; nothing is uncaught.
        sections = {"diagnosis": "#wilife-verdict", "mappings": "button[data-port='20570']",
                    "cameras": "text=0a:00:00:00:00:20", "status": "text=inet wilife, bridge wilife"}
        failures_of = {2: "The wilife-agent service did not answer (ubus status 2: Invalid argument)",
                       7: "The wilife-agent service did not answer (ubus status 7: Request timeout)",
                       "denied": "RPC call to luci.wilife/%s failed with error -32002: Access denied"}
        for method in sections:
            for how, message in failures_of.items():
                f = copy.deepcopy(direct)
                f[f"luci.wilife.{method}"] = {"$error": [-32002, "Access denied"]} if how == "denied" else how
                case = f"{method} fails ({how})"
                if not show(status_src, f, uci):
                    continue
                if "%s" in message:
                    message = message % method
                said = page.eval_on_selector_all(".wilife-failed", "l => l.map(x => x.innerText)")
                check(len(said) == 1 and message in said[0], f"{case}: says {message!r}: {said}")
                for other, sel in sections.items():
                    if other != method:
                        check(page.locator(sel).count() >= 1, f"{case}: the {other} section still renders")
                page.evaluate("Promise.all(window.POLLS.map(f => f()))")
                settle()
                check(len(page.eval_on_selector_all(".wilife-failed", "l => l")) == 1, f"{case}: a poll too")
                if method == "cameras" and how == 7:
                    page.screenshot(path=str(out / "status-failures.png"), full_page=True)
                no_errors(case)

        # A refused config reload, as the agent reports it: shown first, in full.
        r = copy.deepcopy(direct)
        r["luci.wilife.status"] = captured["reload_status"]
        show(status_src, r, uci)
        err = captured["reload_status"]["config"]["reload_error"]
        first = page.eval_on_selector("#wilife-status", "n => n.firstChild ? [n.firstChild.id, n.firstChild.innerText] : [null, '']")
        check(first[0] == "wilife-reload-error" and err in first[1], f"reload error shown first: {first} has {err!r}")
        no_errors("reload error")

        # A session with the read grant only: Delete is disabled; if it is called anyway (rpcd refuses:
        # -32002), a readable notification and nothing uncaught.
        ro = copy.deepcopy(direct)
        ro["luci.wilife.delete_mapping"] = {"$error": [-32002, "Access denied"]}
        show(status_src, ro, uci, readonly=True)
        disabled = page.eval_on_selector_all("button.cbi-button-remove", "l => l.map(b => b.disabled)")
        check(disabled == [True, True], f"read-only: Delete buttons disabled {disabled}")
        page.screenshot(path=str(out / "status-readonly.png"), full_page=True)
        page.evaluate("VIEW.handleDelete(20570).catch(e => window.ERRORS.push('uncaught: ' + e.message))")
        settle()
        note = shown("#notifications")
        check("The mapping was not deleted" in note and "Access denied" in note, f"read-only: says so {note!r}")
        no_errors("read-only delete")

        # Status -> Overview: one line, direct or relay or why not; markup as text.
        denied = {"$error": [-32002, "Access denied"]}
        for case, answers, want in [
            ("direct", direct, "Remote viewing: direct, via " + wan_address(direct["luci.wilife.diagnosis"])),
            ("relay", captured["cases"]["relay"], "Remote viewing: relay only — The WAN address 10.0.0.2 is private"),
            ("failed", dict(direct, **{"luci.wilife.diagnosis": 7}),
             "Remote viewing: unknown — The wilife-agent service did not answer (ubus status 7: Request timeout)"),
            ("hostile", hd, "Remote viewing: relay only — " + hostile),
            ("denied", dict(direct, **{"luci.wilife.diagnosis": denied, "luci.wilife.cameras": 2}),
             "Remote viewing: unknown — The call to the wilife-agent service failed: "
             "RPC call to luci.wilife/diagnosis failed with error -32002: Access denied"),
        ]:
            if not show(overview_src, answers, uci, fn="showInclude"):
                continue
            line = shown("#wilife-overview")
            check(want in line, f"overview {case}: {line!r} has {want!r}")
            if case in ("direct", "relay"):
                check("Cameras present: 1 of 1" in line, f"overview {case}: cameras {line!r}")
            not_run(f"overview {case}")
            if case == "direct":
                page.screenshot(path=str(out / "overview-direct.png"), full_page=True)
            no_errors(f"overview {case}")

        hints = {"luci-rpc.getHostHints": captured["hints"]}
        show(settings_src, hints, uci)
        cc_ip = page.input_value("fieldset[data-section='command_center'] input[data-option='ip']")
        check(cc_ip == "192.168.50.10", f"settings: Command Center ip {cc_ip!r}")
        cam_mac = page.input_value("fieldset[data-section='camera'] input[data-option='mac']")
        check(cam_mac == "0a:00:00:00:00:20", f"settings: camera mac {cam_mac!r}")
        invalid = page.eval_on_selector_all(".cbi-input-invalid", "l => l.map(x => x.dataset.option)")
        check(invalid == [], f"settings: the agent-accepted config shows no invalid field ({invalid})")
        check(page.query_selector("[data-option='api_token']") is None,
              "settings: no API token field (the token is root's alone)")
        page.screenshot(path=str(out / "settings.png"), full_page=True)
        show(settings_src, hints, uci_sections(captured["bad_config"]))
        invalid = page.eval_on_selector_all(".cbi-input-invalid",
                                            "l => l.map(x => [x.dataset.option, x.dataset.error])")
        check([o for o, _ in invalid] == captured["bad_options"],
              f"settings: the form rejects what `wilife-agent check` rejects: {invalid}")
        page.screenshot(path=str(out / "settings-invalid.png"), full_page=True)

        # A Command Center with a name only: the agent refused it (reload_status); so does the form.
        show(settings_src, hints, uci_sections(captured["no_address_config"]))
        invalid = page.eval_on_selector_all(".cbi-input-invalid",
                                            "l => l.map(x => [x.dataset.option, x.dataset.error])")
        check([o for o, _ in invalid] == ["ip"], f"settings: a Command Center needs ip or mac: {invalid}")
        saved = page.evaluate("MAP.save().then(() => 'saved', e => e.message)")
        check(saved.startswith('Option "IP address" contains an invalid input value.'),
              f"settings: saving it is refused: {saved!r}")
        check(page.evaluate("window.UCI_CHANGES") == [], "settings: the refused save staged nothing")
        no_errors("settings")

        # The shipped /etc/config/wilife, saved unchanged, stages nothing (LuCI would otherwise show
        # "Unsaved changes" and rewrite the file); a real edit does stage.
        show(settings_src, hints, uci_sections(captured["shipped_config"]))
        unchanged = page.evaluate("MAP.save()")
        check(unchanged == [], f"settings: saving the shipped config unchanged stages nothing: {unchanged}")
        page.uncheck("fieldset[data-section='direct'] input[data-option='reflection']")
        page.fill("input[data-option='presence_timeout']", "")
        staged = [c for c in page.evaluate("MAP.save()") if c not in unchanged]
        check(staged == [["delete", "main", "presence_timeout"], ["set", "direct", "reflection", "0"]],
              f"settings: an edit stages exactly it: {staged}")
        no_errors("settings save")

        # Read-only: every field disabled.
        show(settings_src, hints, uci, readonly=True)
        enabled = page.eval_on_selector_all("[data-option]", "l => l.filter(x => !x.disabled).map(x => x.dataset.option)")
        check(enabled == [], f"settings read-only: nothing is editable ({enabled})")
        no_errors("settings read-only")
        browser.close()
    print(f"{len(failures)} failures")
    return 1 if failures else 0


def wan_address(d):
    return f"{d['external']['address']}:" + ", ".join(str(p) for p in d['external']['ports'])


if __name__ == "__main__":
    sys.exit(main())
