#!/usr/bin/env python3
"""Renders the LuCI views of luci-app-wilife in a real headless Chromium (Debian's, driven by
Playwright from PyPI) on tests/luci/harness.html, whose stand-in runtime behaves like LuCI's own (see
tests/luci/luci-stub.js) and answers rpc calls with real answers captured from the agent in the lab.
Checks the verdict, the mapping rows, the cameras, Delete; that markup in any value from the agent is
shown as text and never runs; that each failed ubus call (bare status 2, 7, access denied) spoils only
its own section, readably; the refused reload; a read-only session; the settings form's validation
(held to `wilife-agent check`) and that saving the shipped config unchanged stages nothing; the
Status -> Overview include; the agent down; the end-to-end test; the settings' tables and their Add
dialog. No page may raise an uncaught error. Writes screenshots into OUT_DIR, and those the docs show
(desktop and phone-sized) into DOCS_DIR.

usage: luci_views_check.py CAPTURED.json OUT_DIR DOCS_DIR
CAPTURED.json: {"cases": {"direct": {answers}, "relay": {answers}}, "config": "UCI text",
                "bad_config": "UCI text", "bad_options": [...], "hints": {...}, "hostile": "markup",
                "reload_status": {status answer}, "no_address_config": "UCI text",
                "shipped_config": "UCI text"}
"""
import copy
import json
import re
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
    docs = pathlib.Path(sys.argv[3])
    docs.mkdir(parents=True, exist_ok=True)
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

        def doc_shots(name):
            """The page as the docs show it: desktop, then phone-sized (LuCI's phone layout)."""
            page.screenshot(path=str(docs / f"{name}.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(50)
            page.screenshot(path=str(docs / f"{name}-phone.png"), full_page=True)
            page.set_viewport_size({"width": 1200, "height": 900})

        def table_rows(table_id):
            return page.locator(f"#{table_id} tr.tr:not(.table-titles)")

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
            heading = shown("#wilife-remote h3")
            check(heading == "Remote viewing", f"{case}: the heading is a heading, not the reason: {heading!r}")
            asked = [c["method"] for c in page.evaluate("window.RPC_CALLS")]
            check("remedy" not in asked, f"{case}: no remedy is asked for while the rules see every camera {asked}")
            if case == "direct":
                want = f"Direct, via {wan_address(d)}"
                check(verdict == want, f"{case}: verdict {verdict!r} == {want!r}")
                rows = table_rows("wilife-mappings-table")
                check(rows.count() == 2, f"{case}: two mapping rows ({rows.count()})")
                # LuCI's own table layout: stripes, and each cell titled for the phone layout.
                classes = [rows.nth(i).get_attribute("class") for i in range(rows.count())]
                check(classes == ["tr cbi-rowstyle-1", "tr cbi-rowstyle-2"], f"{case}: striped rows {classes}")
                titles = rows.nth(0).locator("td").evaluate_all("l => l.map(x => x.dataset.title || null)")
                check(titles == ["Client", "Port", "Description", "Lease left", "Traffic", None],
                      f"{case}: cells titled {titles}")
                check(page.locator("#wilife-mappings-unused").count() == 0, f"{case}: no note while direct")
                # The end-to-end test: the Command Center answered, then the public address.
                hops = table_rows("wilife-probe-hops")
                said = [hops.nth(i).inner_text() for i in range(hops.count())]
                check(len(said) == 2 and "Command Center" in said[0] and "Answered" in said[0]
                      and "Public address" in said[1] and "Answered" in said[1], f"{case}: the test's hops {said}")
                check(page.locator("#wilife-probe-problem").count() == 0, f"{case}: no problem")
                row = rows.nth(0).inner_text()
                check("192.168.50.10" in row and "TCP 20570" in row and "WiLife" in row,
                      f"{case}: mapping row {row!r}")
                # The description a LAN client sent with markup, through the agent and rpcd: text.
                row = rows.nth(1).inner_text()
                check("TCP 20571" in row and captured["stored_hostile"] in row,
                      f"{case}: the hostile description as text {row!r}")
                not_run(case)
                # Delete spins and stays disabled until the answer (slow here on purpose).
                page.evaluate("window.RPC_DELAY = {'luci.wilife.delete_mapping': 600}")
                page.click("button[data-port='20570']")
                busy = page.eval_on_selector("button[data-port='20570']", "b => [b.disabled, b.classList.contains('spinning')]")
                check(busy == [True, True], f"{case}: Delete is disabled and spinning while it runs {busy}")
                page.wait_for_function("window.RPC_CALLS.some(c => c.method === 'delete_mapping')")
                calls = page.evaluate("window.RPC_CALLS.filter(c => c.method === 'delete_mapping')")
                check(calls == [{"object": "luci.wilife", "method": "delete_mapping",
                                 "args": {"protocol": "tcp", "port": 20570}}],
                      f"{case}: Delete calls delete_mapping(tcp, 20570): {calls}")
                # Test now: the rate limit's answer, said in a notification; the section stays.
                page.click("#wilife-probe-run")
                page.wait_for_function("window.RPC_CALLS.some(c => c.method === 'probe')")
                settle()
                note = shown("#notifications")
                check("The test did not run" in note and "ask again in" in note, f"{case}: Test now, too soon: {note!r}")
            else:
                check(verdict == "Relay only", f"{case}: verdict {verdict!r}")
                why = shown("#wilife-why")
                check(why == d["reasons"][0]["message"], f"{case}: why {why!r}")
                check("10.0.0.2 is private" in why and "double NAT" in why, f"{case}: says why")
                note = page.locator("#wilife-mappings-unused")
                check(note.count() == 1 and note.locator("a").get_attribute("href") == "#wilife-remote",
                      f"{case}: a mapping no viewer can use links to what to do")
                code = page.get_attribute("#wilife-verdict", "data-reason")
                check(code == "wan_private", f"{case}: reason code {code!r}")
                # Double NAT: the gateway upstream's section says where it stands.
                state = page.get_attribute("#wilife-upstream", "data-state")
                want = answers["luci.wilife.status"]["upstream"].get("idle")
                check(state == want, f"{case}: upstream section state {state!r} == {want!r}")
            if case == "direct":
                check(page.locator("#wilife-upstream").count() == 0, f"{case}: no upstream section")
            cams = shown("#wilife-cameras-table")
            check("porch" in cams and "0a:00:00:00:00:20" in cams and "present" in cams,
                  f"{case}: camera row {cams!r}")
            router = shown("#wilife-router-table")
            st = answers["luci.wilife.status"]
            for want in ["inet wilife, bridge wilife", "active", st["version"], "Running for",
                         "UPnP: the Command Center asks for its port", st["wan"]["device"]] + st["wan"]["ipv4"]:
                check(want in router, f"{case}: the router section says {want!r}: {router!r}")
            check(page.locator("#wilife-reload-error").count() == 0, f"{case}: no reload error shown")
            page.evaluate("Promise.all(window.POLLS.map(f => f()))")
            check(page.inner_text("#wilife-verdict") == verdict, f"{case}: poll refresh keeps the page")
            page.screenshot(path=str(out / f"status-{case}.png"), full_page=True)
            no_errors(case)
            # For the docs: the same answers without the test's hostile mapping, no notification.
            clean = copy.deepcopy(answers)
            clean["luci.wilife.mappings"]["mappings"] = [
                m for m in clean["luci.wilife.mappings"]["mappings"] if m["description"] != captured["stored_hostile"]]
            show(status_src, clean, uci)
            doc_shots(f"status-{case}")

        # Double NAT, for real (miniupnpd in front): the gateway section says in one sentence what it
        # does, the verdict is direct via the gateway's address, the test went through the gateway.
        dn = captured["double_nat"]
        show(status_src, dn, uci)
        d = dn["luci.wilife.diagnosis"]
        verdict = page.inner_text("#wilife-verdict")
        check(d["direct_possible"] and verdict == f"Direct, via {wan_address(d)}", f"double NAT: verdict {verdict!r}")
        state = shown("#wilife-upstream-state")
        st = dn["luci.wilife.status"]["upstream"]
        check(page.get_attribute("#wilife-upstream", "data-state") == "mapping"
              and "The gateway at 192.168.0.1 forwards 1 port(s) to this router over PCP" in state
              and st["standing"]["external_address"] in state, f"double NAT: the gateway's sentence {state!r}")
        hops = shown("#wilife-probe-hops")
        check("Gateway upstream" in hops, f"double NAT: the test's gateway hop {hops!r}")
        doc_shots("status-double-nat")
        no_errors("double NAT")

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
        h["luci.wilife.last_probe"] = {"probe": {
            "at": 0, "trigger": "on_demand", "broken_hop": "command_center", "problem": hostile,
            "hops": [{"hop": "gateway", "address": None, "external_port": 20570, "verdict": "not_tried",
                      "ms": 0, "why": hostile}]}}
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
            "mapping owner": shown("#wilife-mappings-table"),
            "camera name": shown("#wilife-cameras-table"),
            "summary": shown("#wilife-summary"),
            "reasons": shown("#wilife-reasons"),
            "reload error": shown("#wilife-reload-error"),
            "firewall error": shown("#wilife-router-table"),
            "delete notification": shown("#notifications"),
            "gateway upstream": shown("#wilife-upstream"),
            "end-to-end test": shown("#wilife-probe-hops"),
            "end-to-end problem": shown("#wilife-probe-problem"),
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
        check(shown("#wilife-why") == hostile, "hostile: the verdict shows the reason as text")
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
        cams = shown("#wilife-cameras-table")
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
                    "cameras": "text=0a:00:00:00:00:20", "status": "text=inet wilife, bridge wilife",
                    "last_probe": "#wilife-probe-hops"}
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
        relay_reason = captured["cases"]["relay"]["luci.wilife.diagnosis"]["reasons"][0]["message"]
        for case, answers, want in [
            ("direct", direct, "Remote viewing: Direct, via " + wan_address(direct["luci.wilife.diagnosis"])),
            ("relay", captured["cases"]["relay"], "Remote viewing: Relay only\n\n" + relay_reason),
            ("failed", dict(direct, **{"luci.wilife.diagnosis": 7}),
             "Remote viewing: unknown. The wilife-agent service did not answer (ubus status 7: Request timeout)"),
            ("hostile", hd, "Remote viewing: Relay only\n\n" + hostile),
            ("denied", dict(direct, **{"luci.wilife.diagnosis": denied, "luci.wilife.cameras": 2}),
             "Remote viewing: unknown. The call to the wilife-agent service failed: "
             "RPC call to luci.wilife/diagnosis failed with error -32002: Access denied"),
        ]:
            if not show(overview_src, answers, uci, fn="showInclude"):
                continue
            line = shown("#wilife-overview")
            check(want in line, f"overview {case}: {line!r} has {want!r}")
            if case in ("direct", "relay"):
                check("Cameras present: 1 of 1" in line, f"overview {case}: cameras {line!r}")
            link = page.get_attribute("#wilife-overview a", "href")
            check(link == "/cgi-bin/luci/admin/services/wilife/status", f"overview {case}: links to the app {link!r}")
            not_run(f"overview {case}")
            if case == "direct":
                page.screenshot(path=str(out / "overview-direct.png"), full_page=True)
                doc_shots("overview")
            no_errors(f"overview {case}")

        # The agent down: one box says so and how to start it (not a failure in every section); Start
        # calls the plugin's start; a read-only session cannot.
        down = captured["down"]
        show(status_src, down, uci)
        boxes = page.locator("#wilife-status > .cbi-section")
        check(boxes.count() == 1 and page.locator("#wilife-down").count() == 1,
              f"down: one box ({boxes.count()})")
        said = shown("#wilife-down")
        check("not running" in said and "service wilife start" in said, f"down: says how to start it {said!r}")
        page.screenshot(path=str(out / "status-down.png"), full_page=True)
        doc_shots("status-down")
        page.click("#wilife-start")
        page.wait_for_function("window.RPC_CALLS.some(c => c.method === 'start')")
        busy = page.eval_on_selector("#wilife-start", "b => b.disabled")
        check(busy, "down: Start is disabled while it runs")
        no_errors("down")
        show(status_src, down, uci, readonly=True)
        check(page.eval_on_selector("#wilife-start", "b => b.disabled"), "down, read-only: Start disabled")
        no_errors("down, read-only")

        # getHostHints keys MACs in upper case, as the real one does; the form shows them in lower case.
        hints = {"luci-rpc.getHostHints": {mac.upper(): h for mac, h in captured["hints"].items()}}
        show(settings_src, hints, uci)
        cc_ip = page.input_value("[data-section='command_center'] input[data-option='ip']")
        check(cc_ip == "192.168.50.10", f"settings: Command Center ip {cc_ip!r}")
        cam_mac = page.input_value("[data-section='camera'] input[data-option='mac']")
        check(cam_mac == "0a:00:00:00:00:20", f"settings: camera mac {cam_mac!r}")
        choices = page.eval_on_selector_all("datalist option", "l => l.map(o => o.value + ' ' + o.textContent)")
        upper_mac = re.compile(r"(?=[0-9a-fA-F:]*[A-F])[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")
        check(len(choices) >= 3 and not any(upper_mac.search(c) for c in choices),
              f"settings: MAC addresses in lower case among the choices {choices}")
        # Command Centers and cameras are LuCI tables, a row each, the cells titled for phones.
        for section in ["command_center", "camera"]:
            rows = page.locator(f"[data-section='{section}'] tr.cbi-section-table-row")
            check(rows.count() == 1, f"settings: {section} is a table with a row each ({rows.count()})")
        titles = page.eval_on_selector_all("[data-section='camera'] tr.cbi-section-table-row td",
                                           "l => l.map(x => x.dataset.title || null)")
        check(titles == ["Name", "MAC address", "Fixed IP address", None], f"settings: camera cells {titles}")
        # UPnP and the gateway upstream have their fields; missing from this config, LuCI offers to add them.
        check(page.locator("[data-create='upnp']").count() == 1 and page.locator("[data-create='upstream']").count() == 1,
              "settings: the UPnP and gateway sections can be added")
        invalid = page.eval_on_selector_all(".cbi-input-invalid", "l => l.map(x => x.dataset.option)")
        check(invalid == [], f"settings: the agent-accepted config shows no invalid field ({invalid})")
        check(page.query_selector("[data-option='api_token']") is None,
              "settings: no API token field (the token is root's alone)")
        page.screenshot(path=str(out / "settings.png"), full_page=True)
        # Add: the new camera lives in the dialog only; without a MAC, Save is refused and stages
        # nothing; Dismiss leaves no trace; with a MAC, exactly the new section is staged.
        page.click("[data-section='camera'] .cbi-button-add")
        page.click("#modal-save")
        settle()
        refusal = shown("#modal-error")
        check('Option "MAC address" must not be empty' in refusal, f"settings: Add without a MAC is refused: {refusal!r}")
        check(page.evaluate("window.UCI_CHANGES") == [], "settings: the refused camera staged nothing")
        page.click("#modal-dismiss")
        check(page.evaluate("Object.keys(window.UCI).filter(k => k.startsWith('new'))") == [],
              "settings: Dismiss takes the new camera back out")
        page.click("[data-section='camera'] .cbi-button-add")
        page.fill("#modal input[data-option='name']", "garage")
        page.fill("#modal input[data-option='mac']", "0a:00:00:00:00:99")
        page.click("#modal-save")
        settle()
        staged = page.evaluate("window.UCI_CHANGES")
        check([c for c in staged if "new2" in c] == [["add", "camera", "new2"], ["set", "new2", "name", "garage"],
                                                     ["set", "new2", "mac", "0a:00:00:00:00:99"]],
              f"settings: the new camera is staged, and only it: {staged}")
        rows = page.locator("[data-section='camera'] tr.cbi-section-table-row")
        check(rows.count() == 2, f"settings: the table shows the new camera ({rows.count()})")
        no_errors("settings add")
        shipped = uci_sections(captured["shipped_config"])
        show(settings_src, hints, shipped)
        check(page.locator("[data-section='upnp'] [data-option='max_per_client']").count() == 1
              and page.locator("[data-section='upstream'] [data-option='mode']").count() == 1,
              "settings: UPnP and gateway upstream fields")
        # For the docs: the lab's Command Center and camera in the shipped config.
        show(settings_src, hints, dict(shipped, **{k: v for k, v in uci.items()
                                                   if v[".type"] in ("command_center", "camera")}))
        doc_shots("settings")
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
        page.uncheck("[data-section='direct'] input[data-option='reflection']")
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
