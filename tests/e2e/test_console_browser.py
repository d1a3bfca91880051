"""The web console in a real browser: Debian's headless Chromium, driven by
Selenium through chromedriver, against a real ledger (gRPC + console) with
the worked scenario loaded and a principals file.

Without chromium this module is skipped, unless SLA_LEDGER_REQUIRE_BROWSER=1
(CI sets it): then a missing browser is a failure. Screenshots of every page
go to the test's output folder (printed; SLA_LEDGER_SCREENSHOTS overrides).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger.adapters.principals_file import hash_token
from ledger.adapters.scenario import read_scenario
from ledger.cli.common import demo_scenario_path
from ledger.cli.load import load_scenario
from ledger.client import LedgerClient
from ledger.domain.codec import event_from_dict
from ledger.domain.instants import format_instant, parse_instant
from ledger.domain.sla.incident_json import incident_view_dict
from ledger.domain.sla.report_json import period_report_dict
from ledger.grpc.server import ServerConfig
from tests.support.ledger_server import running_ledger_and_console
from tests.support.statement_figures import check_figures

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
T = parse_instant("2026-11-05T00:00:00Z")
AGREEMENT = "herts-converged"
TOKENS = {"admin": "tok-admin-3b1f", "bt": "tok-bt-9c2e", "acme": "tok-acme-51d0",
          "auditor": "tok-audit-77aa"}
PRINCIPALS = [("importer", "operator", "admin", "admin"), ("bt-noc", "bt", "provider", "bt"),
              ("acme-noc", "acme", "provider", "acme"), ("audit-office", "nao", "auditor", "auditor")]
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1200,1600")


def _require_browser() -> None:
    if CHROMIUM and CHROMEDRIVER:
        return
    message = "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
    if os.environ.get("SLA_LEDGER_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{message}, and SLA_LEDGER_REQUIRE_BROWSER=1: browser tests must run")
    pytest.skip(message)


@dataclass
class World:
    url: str
    target: str

    def client(self, who: str) -> LedgerClient:
        return LedgerClient(self.target, token=TOKENS[who])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    _require_browser()
    folder = tmp_path_factory.mktemp("console")
    principals = folder / "principals.yaml"
    principals.write_text("principals:\n" + "".join(
        f"  - {{name: {name}, org: {org}, role: {role}, token_sha256: {hash_token(TOKENS[key])}}}\n"
        for name, org, role, key in PRINCIPALS))
    config = ServerConfig(listen="127.0.0.1:0", principals=principals)
    with running_ledger_and_console(f"sqlite:///{folder / 'ledger.db'}", lambda: T, config) as \
            (_, target, url):
        world = World(url, target)
        with world.client("admin") as admin:
            summary = load_scenario(admin, read_scenario(demo_scenario_path()))
            assert summary.stored > 100
        yield world


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("SLA_LEDGER_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(browser: Any, world: World, who: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{world.url}/login")
    browser.find_element(By.ID, "token").send_keys(TOKENS[who])
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 20).until(lambda b: "/login" not in b.current_url)


def visit(browser: Any, url: str, shots: Path | None = None, name: str = "",
          errors_allowed: tuple[str, ...] = ()) -> None:
    """Loads a page; fails on any console error; saves a screenshot."""
    browser.get(url)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"
              and not any(allowed in e["message"] for allowed in errors_allowed)]
    assert not errors, f"console errors on {url}: {errors}"
    if shots is not None:
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1200, min(max(height + 40, 800), 6000))
        browser.save_screenshot(str(shots / f"{name}.png"))
        browser.set_window_size(1200, 1600)


def figures_on_page(browser: Any) -> list[tuple[str, str | None, str]]:
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-figure]'))"
        ".map(e => [e.dataset.figure, e.getAttribute('data-value'), e.textContent]);")
    return [(p, v, " ".join(t.split())) for p, v, t in rows]


def test_every_page_renders_and_the_period_page_equals_the_json_report(
        browser: Any, world: World, shots: Path) -> None:
    sign_in(browser, world, "bt")
    visit(browser, f"{world.url}/", shots, "agreements")
    from selenium.webdriver.common.by import By

    assert [e.get_attribute("data-agreement") for e in
            browser.find_elements(By.CSS_SELECTOR, "tr[data-agreement]")] == [AGREEMENT]
    question = "evaluated_at=2026-11-05T00:00:00Z"
    visit(browser, f"{world.url}/agreements/{AGREEMENT}/2026-10?{question}", shots, "period")
    figures = figures_on_page(browser)
    with world.client("bt") as client:
        position = int(browser.find_element(By.CSS_SELECTOR, "section.statement")
                       .get_attribute("data-position"))
        report = period_report_dict(
            client.period_report(AGREEMENT, "2026-10", evaluated_at=T, as_recorded_position=position))
        statement = client.statement(AGREEMENT, "2026-10", evaluated_at=T, as_recorded_position=position)

        def incident_sla(incident_id: str) -> dict[str, Any]:
            return incident_view_dict(client.incident_sla(incident_id, evaluated_at=T, as_recorded_position=position))

        assert check_figures(figures, report, statement, incident_sla) > 50
    assert {f"service_levels.{lv['id']}.attainment" for lv in report["service_levels"]} <= \
        {p for p, _, _ in figures}
    # the pickers: another period and a knowledge cut, without script
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    Select(browser.find_element(By.ID, "period-picker")).select_by_value("2026-09")
    cut = browser.find_element(By.ID, "knowledge-cut")
    cut.clear()
    cut.send_keys("40")
    browser.find_element(By.CSS_SELECTOR, "form.pickers button").click()
    WebDriverWait(browser, 20).until(lambda b: "/2026-09" in b.current_url)
    assert "as_recorded_at=40" in browser.current_url
    section = browser.find_element(By.CSS_SELECTOR, "section.statement")
    assert section.get_attribute("data-position") == "40"
    visit(browser, f"{world.url}/incidents/INC-1002?{question}", shots, "incident-INC-1002")
    visit(browser, f"{world.url}/agreements/{AGREEMENT}/incidents", shots, "incidents")
    visit(browser, f"{world.url}/at-risk", shots, "at-risk")


def test_the_late_handoff_of_INC_1003_stands_where_it_happened(
        browser: Any, world: World, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, world, "auditor")
    visit(browser, f"{world.url}/incidents/INC-1003?evaluated_at=2026-11-05T00:00:00Z", shots,
          "incident-INC-1003")
    items = browser.find_elements(By.CSS_SELECTOR, "#timeline li")
    shown = [(int(i.get_attribute("data-position")), i.get_attribute("data-type"),
              i.get_attribute("data-late") == "true") for i in items]
    with world.client("auditor") as client:
        stored = client.get_incident("INC-1003").timeline
    occurred = {e.recorded.position: e.recorded.event.occurred_at.ToMicroseconds() for e in stored}
    # every stored event, in the order things happened
    assert sorted(occurred) == sorted(p for p, _, _ in shown)
    assert [occurred[p] for p, _, _ in shown] == sorted(occurred[p] for p, _, _ in shown)
    # late: stored after an event that happened later; the handoff is one
    late = {p for p in occurred if any(occurred[o] > occurred[p] and o < p for o in occurred)}
    assert late == {p for p, _, is_late in shown if is_late}
    assert any(kind == "handed_off" and is_late for _, kind, is_late in shown)
    index = next(n for n, (_, kind, is_late) in enumerate(shown) if kind == "handed_off" and is_late)
    assert 0 < index < len(shown) - 1  # between what happened before and after it


def test_the_at_risk_list_gains_an_incident_appended_after_it_opened(
        browser: Any, world: World, shots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    sign_in(browser, world, "bt")
    visit(browser, f"{world.url}/at-risk?agreement={AGREEMENT}")
    before = {r.get_attribute("data-incident") for r in
              browser.find_elements(By.CSS_SELECTOR, "#at-risk tbody tr[data-incident]")}
    assert "INC-LIVE-1" not in before
    event = event_from_dict({
        "event_id": "live-1-opened", "incident_id": "INC-LIVE-1", "type": "opened",
        "occurred_at": format_instant(T - 10 * 60_000_000), "actor": "herts",
        "agreement": AGREEMENT, "service": "converged-network", "priority": "P1", "custody": "bt"})
    with world.client("admin") as admin:
        admin.append([event])
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(
        By.CSS_SELECTOR, "#at-risk tbody tr[data-incident='INC-LIVE-1']"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#at-risk tbody tr[data-incident]")
    due = [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows]
    assert due == sorted(due)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors
    browser.save_screenshot(str(shots / "at-risk-updated.png"))


def test_a_caller_without_access_sees_nothing_of_another_partys_agreement(
        browser: Any, world: World, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, world, "acme")
    visit(browser, f"{world.url}/", shots, "agreements-acme")
    assert browser.find_elements(By.ID, "no-agreements")
    assert not browser.find_elements(By.CSS_SELECTOR, "tr[data-agreement]")
    refused = "the server responded with a status of 404"
    for path in (f"/agreements/{AGREEMENT}/2026-10", f"/agreements/{AGREEMENT}", "/incidents/INC-1003",
                 f"/agreements/{AGREEMENT}/incidents", f"/api/agreements/{AGREEMENT}/2026-10/report.json",
                 f"/agreements/{AGREEMENT}/2026-10/statement.html"):
        visit(browser, f"{world.url}{path}", errors_allowed=(refused,))
        text = browser.find_element(By.TAG_NAME, "body").text
        assert "not found" in text.lower(), path
        for secret in ("INC-1002", "GBP", "bt", "hp", "herts ", "p1-resolution"):
            assert secret not in text.replace(AGREEMENT, ""), (path, secret)
    # an unknown agreement reads the same as one the caller may not see
    visit(browser, f"{world.url}/agreements/no-such-agreement/2026-10", errors_allowed=(refused,))
    unknown = browser.find_element(By.ID, "error-message").text.replace("no-such-agreement", "X")
    visit(browser, f"{world.url}/agreements/{AGREEMENT}/2026-10", errors_allowed=(refused,))
    assert browser.find_element(By.ID, "error-message").text.replace(AGREEMENT, "X") == unknown
    visit(browser, f"{world.url}/at-risk", shots, "at-risk-acme")
    assert not browser.find_elements(By.CSS_SELECTOR, "#at-risk tbody tr[data-incident]")
    # and no token at all: the sign-in page, nothing else
    browser.delete_all_cookies()
    visit(browser, f"{world.url}/agreements/{AGREEMENT}/2026-10",
          errors_allowed=("the server responded with a status of 401",))
    assert browser.find_elements(By.ID, "token")
    assert "GBP" not in browser.page_source
