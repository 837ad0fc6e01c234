"""BROWSER TEST: Playwright drives Debian's Chromium against a real `ledger serve`.

Marked ``browser`` (``pytest -m browser`` runs only these, ``-m "not browser"`` skips
them). Chromium is /usr/bin/chromium (``infra/install-chromium.sh`` installs it;
nothing is downloaded by Playwright). Each page visited is screenshotted into the
folder printed at the end of the run, and checked with axe-core (pinned: the copy
shipped in axe-playwright-python 0.1.8, axe-core 4.12.1) for serious or critical
accessibility violations.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.api.auth import create_token, revoke_token
from ledger.config import Settings
from ledger.console.instants import local_text
from ledger.domain.values import parse_instant
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.conftest import migrated
from tests.integration.conftest import CONSOLE_SCREENSHOTS
from tests.integration.console_world import HOSTILE, NAME, O4_NAME, apply, build
from tests.integration.util import child_env, ledger_cmd
from tests.ports import free_port

# One xdist worker runs the whole module: one server and one Chromium for all its tests.
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("console-browser")]

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = CONSOLE_SCREENSHOTS  # one folder per run, named in the run's summary

playwright_api = pytest.importorskip("playwright.sync_api")


def _need(ok: bool, why: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


@dataclass
class Console:
    """A running `ledger serve`, its store and tokens, the browser, and what the checks found."""

    base: str
    settings: Settings
    tokens: dict[str, str]
    browser: Any
    axe: str
    shots: list[str] = field(default_factory=list)
    done: set[str] = field(default_factory=set)  # the correction flows already run against this server

    def page(self, **options: Any) -> Any:
        context = self.browser.new_context(base_url=self.base, **options)
        return context.new_page()

    def check(self, page: Any, name: str) -> None:
        """Screenshot the page, and fail on any serious or critical axe-core violation."""
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        self.shots.append(name)
        page.evaluate(self.axe)
        found = page.evaluate("""async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
                .map(v => `${v.id} (${v.impact}): ${v.nodes.map(n => n.target.join(" ")).join(", ")}`);
        }""")
        assert found == [], (name, found)


def _serve(settings: Settings, port: int, key: Path) -> subprocess.Popen[str]:
    env = {**child_env(), "LEDGER_SIGNING_KEY": str(key)}
    return subprocess.Popen(ledger_cmd(settings, "serve", "--port", str(port), "--no-project"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    _need(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run infra/install-chromium.sh")
    try:
        axe = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text()
    except ModuleNotFoundError:
        axe = ""
    _need(bool(axe), "axe-core is missing: pip install axe-playwright-python==0.1.8")
    folder = tmp_path_factory.mktemp("console")
    settings = migrated(Settings(store=f"sqlite:///{folder / 'ledger.store.db'}"))
    tokens = build(settings)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # this run's own folder
    port = free_port()
    server = _serve(settings, port, folder / "signing-key.pem")
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "ledger serve did not start"
                time.sleep(0.1)
        with playwright_api.sync_playwright() as pw:
            args = ["--no-sandbox"] if os.geteuid() == 0 else []
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
            found = Console(base, settings, tokens, browser, axe)
            yield found
            browser.close()
    finally:
        server.terminate()
        server.communicate(timeout=30)


def _sign_in_by_keyboard(page: Any, token: str) -> None:
    page.goto("/console/sign-in")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"  # the first stop skips the header
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console")


def _tab_to(page: Any, element_id: str, limit: int = 30) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} cannot be reached with Tab")


def test_an_auditor_signs_in_opens_an_officer_and_moves_the_as_of_control(console: Console) -> None:
    page = console.page()
    _sign_in_by_keyboard(page, console.tokens["auditor"])
    console.check(page, "home-auditor")
    _tab_to(page, "officer_id")
    page.keyboard.type("O1")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/officers/O1")
    assert NAME in page.inner_text("h1")
    assert page.inner_text("#completed-count") == "1"
    assert page.locator("#competency-chart-title").count() == 1
    assert page.locator("#readers").count() == 1  # the auditor sees who read the officer
    console.check(page, "officer")
    page.fill("#as_of", "2025-04-02")
    page.click("text=Show")
    page.wait_for_url("**as_of=2025-04-02**")
    assert page.inner_text("#completed-count") == "0"
    assert "K-BUD" not in page.inner_text("#enrolments")
    page.fill("#compare", "2025-04-20")
    page.keyboard.press("Enter")
    page.wait_for_url("**compare=2025-04-20**")
    changes = page.inner_text("#changes")
    assert "enrolments[K-ETH].status" in changes and "completed" in changes
    console.check(page, "officer-as-of")
    page.click("text=Sign out")
    page.wait_for_url("**/console/sign-in")
    page.goto("/console/officers/O1")
    assert "/console/sign-in" in page.url and NAME not in page.content()


def test_the_officer_sees_who_read_their_record_without_names(console: Console) -> None:
    page = console.page()
    _sign_in_by_keyboard(page, console.tokens["officer"])
    page.goto("/console/officers/O1")
    table = page.locator("#readers")
    assert table.count() == 1 and "Token" not in table.inner_text()
    assert "record, competencies and history (console)" in table.inner_text()
    assert "audit-1" not in table.inner_text() and "hr-finance" not in table.inner_text()
    console.check(page, "officer-own")


def test_every_control_is_reached_by_keyboard_with_a_visible_focus_and_a_label(console: Console) -> None:
    page = console.page()
    _sign_in_by_keyboard(page, console.tokens["officer"])
    page.goto("/console/officers/O1")
    unlabeled = page.evaluate("""[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.outerHTML)""")
    assert unlabeled == []
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focus = page.evaluate("""() => { const e = document.activeElement;
            const s = getComputedStyle(e);
            return [e.tagName, e.id || e.textContent.trim().slice(0, 20), s.outlineStyle, s.outlineWidth]; }""")
        if focus[0] == "BODY":
            break
        assert focus[2] != "none" and focus[3] != "0px", focus  # the focus can be seen
        reached.append(focus[1])
    assert {"as_of", "known_at", "compare", "Show", "Now", "Sign out", "My record"} <= set(reached), reached


def test_the_pages_fit_a_phone(console: Console) -> None:
    page = console.page(viewport={"width": 375, "height": 740}, is_mobile=True)
    _sign_in_by_keyboard(page, console.tokens["hr_mof"])
    for path, name in (("/console/officers/O1", "officer-phone"), ("/console/ministries/MOF", "ministry-phone")):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), path
        console.check(page, name)


def test_hr_is_refused_another_ministrys_officer_and_no_data_reaches_the_page(console: Console) -> None:
    page = console.page()
    _sign_in_by_keyboard(page, console.tokens["hr_moh"])
    answer = page.goto("/console/officers/O1")
    assert answer is not None and answer.status == 404
    text = page.content()
    assert NAME not in text and "K-ETH" not in text and "asha.verma" not in text
    console.check(page, "refused")
    assert page.goto("/console/ministries/MOF") is not None and "403" in page.inner_text("h1")


def test_a_hostile_name_is_shown_as_text_and_runs_nothing(console: Console) -> None:
    page = console.page()
    dialogs: list[str] = []

    def seen(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", seen)
    _sign_in_by_keyboard(page, console.tokens["hr_mof"])
    page.goto("/console/officers/O3")
    assert HOSTILE in page.inner_text("h1") and page.locator("main b").count() == 0
    assert dialogs == []


def test_a_revoked_token_is_sent_back_to_sign_in(console: Console) -> None:
    token = create_token(Database(console.settings), "short-lived", "auditor")
    page = console.page()
    _sign_in_by_keyboard(page, token)
    page.goto("/console/officers/O1")
    assert NAME in page.inner_text("h1")
    revoke_token(Database(console.settings), "short-lived")
    time.sleep(2.2)  # the server keeps a valid token's check for 2 seconds
    page.goto("/console/officers/O1")
    assert "/console/sign-in" in page.url and NAME not in page.content()


def test_the_integrity_page_refreshes_itself(console: Console) -> None:
    page = console.page()
    _sign_in_by_keyboard(page, console.tokens["auditor"])
    page.goto("/console/integrity")
    for _ in range(100):  # the verification runs in the background: reload until it has a result
        if "Intact" in page.inner_text("#verify-result"):
            break
        time.sleep(0.1)
        page.reload()
    assert "Intact" in page.inner_text("#verify-result")
    page.wait_for_selector("#status[data-refreshed]", timeout=10_000)
    assert "Dead letters: 0" in page.inner_text("#status")
    console.check(page, "integrity")


def test_the_ministry_page_charts_and_downloads_the_gap_report(console: Console) -> None:
    page = console.page(accept_downloads=True)
    _sign_in_by_keyboard(page, console.tokens["hr_mof"])
    page.goto("/console/ministries/MOF")
    assert page.locator("svg[role=img]").count() == 3
    console.check(page, "ministry")
    with page.expect_download() as download:
        page.click("text=Download the gap report (CSV)")
    content = Path(download.value.path()).read_text()
    assert content.splitlines()[0].startswith("ministry_id") and "MOF" in content
    commission = console.page()
    _sign_in_by_keyboard(commission, console.tokens["cbc"])
    commission.goto("/console/ministries/MOH")
    assert commission.inner_text("#headcount") == "1"
    refused = commission.goto("/console/officers/O1")  # the Commission reads no individual
    assert refused is not None and refused.status == 403 and NAME not in commission.content()


def test_csrf_is_refused_without_the_token_and_erasure_runs_end_to_end(console: Console) -> None:
    page = console.page()
    _sign_in_by_keyboard(page, console.tokens["admin"])
    page.goto("/console/erase")
    console.check(page, "erase")
    page.fill("#officer_id", "O2")
    page.select_option("#reason", "data_principal_request")
    page.evaluate("document.querySelector('form[action=\"/console/erase/confirm\"] input[name=csrf]').remove()")
    page.click("text=Continue")
    assert "403" in page.inner_text("h1") and "csrf" in page.inner_text("main")
    page.goto("/console/erase")
    page.fill("#officer_id", "O2")
    page.click("text=Continue")  # no reason chosen: the browser keeps the form (the select is required)
    assert page.url.endswith("/console/erase")
    page.select_option("#reason", "data_principal_request")
    page.fill("#ticket", "GR-17")
    page.click("text=Continue")
    assert "cannot be undone" in page.inner_text("#consequences")
    assert page.inner_text("#reason-code") == "data_principal_request" and page.inner_text("#ticket-id") == "GR-17"
    console.check(page, "erase-confirm")
    page.click("text=Erase officer O2")
    assert page.inner_text("#scrubbed") == "yes"
    console.check(page, "erase-done")
    auditor = console.page()
    _sign_in_by_keyboard(auditor, console.tokens["auditor"])
    auditor.goto("/console/officers/O2")
    assert "Ravi Kumar" not in auditor.content() and "OfficerErased" in auditor.inner_text("#timeline")


def _known_after_build(console: Console) -> str:
    """The "as known at" control's value just after the world was built (before any correction)."""
    ledger = Ledger(console.settings)
    try:
        built = ledger.officer_events("O4")[2]  # version 3, the second transfer: the last the world recorded
        recorded = parse_instant(built["recorded_at"], "recorded_at")
    finally:
        ledger.close()
    return str(local_text(recorded + timedelta(milliseconds=1)))


def _retract_as_registrar(console: Console) -> None:
    """O4's first transfer alone is refused (the second would repeat the post); both together are retracted."""
    page = console.page()
    _sign_in_by_keyboard(page, console.tokens["registrar"])
    page.click("nav >> text=Retract")
    console.check(page, "retract")
    page.fill("#officer_id", "O4")
    page.fill("#versions", "2")
    page.select_option("#reason", "wrong_officer")
    page.fill("#ticket", "GRV-2025-118")
    page.click("text=Continue")
    assert page.inner_text("#versions-list") == "2" and page.inner_text("#reason-code") == "wrong_officer"
    page.click("text=Retract version 2 of officer O4")
    alert = page.inner_text("#form-error")
    assert "rejected this retraction and recorded nothing" in alert and "retract them together" in alert, alert
    assert page.input_value("#officer_id") == "O4" and page.input_value("#ticket") == "GRV-2025-118"
    console.check(page, "retract-rejected")
    page.fill("#versions", "2, 3")
    page.click("text=Continue")
    assert "recorded beside the retraction" in page.inner_text("#consequences")
    assert O4_NAME not in page.content()  # a registrar reads no officer
    console.check(page, "retract-confirm")
    page.click("text=Retract versions 2, 3 of officer O4")
    assert "Retraction recorded" in page.inner_text("h1")
    console.check(page, "retract-done")
    console.done.add("retract")


def _correct_as_admin(console: Console) -> None:
    page = console.page()
    _sign_in_by_keyboard(page, console.tokens["admin"])
    page.click("nav >> text=Correct details")
    console.check(page, "correct")
    page.fill("#officer_id", "O4")
    page.fill("#name", "Meera Iyer-Rao")
    page.click("text=Continue")
    assert page.inner_text("#new-name") == "Meera Iyer-Rao" and "from the registration" in page.inner_text("#in-force")
    console.check(page, "correct-confirm")
    page.click("text=Correct officer O4")
    assert "Correction recorded" in page.inner_text("h1") and O4_NAME not in page.content()
    console.check(page, "correct-done")
    console.done.add("correct")


def test_a_registrar_retracts_through_the_confirmation_after_a_rejection(console: Console) -> None:
    _retract_as_registrar(console)


def test_an_admin_corrects_a_name_through_the_confirmation(console: Console) -> None:
    _correct_as_admin(console)


def test_an_auditor_reads_the_corrections_panel_and_moves_the_known_at_control(console: Console) -> None:
    known = _known_after_build(console)
    if "retract" not in console.done:
        _retract_as_registrar(console)
    if "correct" not in console.done:
        _correct_as_admin(console)
    apply(console.settings)  # the server runs without projections (--no-project): bring the read models up
    page = console.page()
    _sign_in_by_keyboard(page, console.tokens["auditor"])
    page.goto("/console/officers/O4")
    retractions = page.inner_text("#retractions")
    assert "wrong_officer" in retractions and "GRV-2025-118" in retractions and "registry-1" in retractions
    assert "OfficerTransferred version 2" in retractions and "OfficerTransferred version 3" in retractions
    assert "Meera Iyer-Rao" in page.inner_text("#detail-corrections") and "dpo" in page.inner_text("#detail-corrections")
    assert page.locator("#timeline li.retracted").count() == 2 and page.locator("#timeline .flag-late").count() == 1
    assert "CBIC" not in page.inner_text("#record-h + dl + div")  # the postings, without the retracted moves
    console.check(page, "officer-corrections")
    page.fill("#known_at", known)
    page.click("text=Show")
    page.wait_for_url("**known_at=**")
    assert "as known at" in page.inner_text("#record-h")
    assert O4_NAME in page.inner_text("#record-h ~ dl") and "CBIC" in page.inner_text("#record-h + dl + div")
    # The browser shows the instant without trailing zeros of its fraction (…28.370 as …28.37).
    assert page.input_value("#known_at").rstrip("0").rstrip(".") == known.rstrip("0").rstrip(".")
    console.check(page, "officer-known-at")
    hr = console.page(viewport={"width": 375, "height": 740}, is_mobile=True)
    _sign_in_by_keyboard(hr, console.tokens["hr_mof"])
    hr.goto("/console/officers/O4")
    assert "Made by" not in hr.inner_text("#corrections") and "registry-1" not in hr.content()
    assert hr.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    console.check(hr, "officer-corrections-phone")
