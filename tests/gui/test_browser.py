"""The dashboard in a real browser: Debian's headless Chromium driven by
Playwright (``executable_path`` points at the system binary; Playwright's own
browser download does not work here and is never used).

Each test loads a page of the dashboard served by uvicorn, acts as a user
would and checks what the page shows; every page's screenshot is saved under
the test's tmp dir (``--basetemp`` keeps them) for a human to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("SWARM_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed: "
                                                           "pip install playwright (.ci/run does)")

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
TIMEOUT_MS = 30_000           # a deadline against hangs, not a speed check


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=ARGS,
                                                    headless=True, viewport={"width": 1440, "height": 1000})
        yield ctx
        ctx.close()


@pytest.fixture
def page(browser, served):
    p = browser.new_page()
    p.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    p.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_scenario(page, served, file: str) -> None:
    page.goto(served["url"] + "#/scenarios")
    page.locator(".item", has_text=file).first.click()
    page.wait_for_selector("#sdetail .panel")


def test_scenarios_page_lists_them_and_draws_the_graph(page, served, tmp_path):
    page.goto(served["url"])
    page.wait_for_selector("#slist .item")
    names = page.locator("#slist .item .t").all_inner_texts()
    assert any("Service Troubleshooting" in n for n in names)
    open_scenario(page, served, "troubleshooting.toml")
    dag = page.locator("#dag svg")
    assert dag.locator("g.gnode").count() == 5          # its five actions, each a node
    assert dag.locator("g.gnode.start").count() >= 1 and dag.locator("path.gedge").count() >= 4
    assert "One service is failing" in page.inner_text("#sdetail")
    shot(page, tmp_path, "scenarios")


def test_a_broken_scenario_shows_its_error_line(page, served, tmp_path):
    page.goto(served["url"] + "#/scenarios")
    item = page.locator(".item.broken", has_text="broken.toml")
    item.click()
    err = page.locator("#sdetail .error")
    assert "broken.toml" in err.inner_text() and "task.goal" in err.inner_text()
    shot(page, tmp_path, "broken-scenario")


def test_start_an_eval_from_the_page_and_see_it_finish(page, served, tmp_path):
    open_scenario(page, served, "troubleshooting.toml")
    page.fill("input[name=runs]", "3000")
    page.fill("input[name=seed]", "7")
    page.click("#start-eval")
    page.wait_for_selector(".eval-done a")
    assert page.inner_text("#ev-done") == "3,000"
    assert "%" in page.inner_text("#ev-rate") and "–" in page.inner_text("#ev-ci")
    shot(page, tmp_path, "eval-finished")
    page.click(".eval-done a")
    page.wait_for_selector(".hist svg rect")
    assert "3000 runs" in page.inner_text("main") or "of 3000 runs" in page.inner_text("main")


def test_bad_eval_input_is_one_line_in_the_page(page, served):
    open_scenario(page, served, "troubleshooting.toml")
    page.fill("input[name=seed]", "18446744073709551615")
    page.click("#start-eval")
    assert "--seed" in page.locator("#evalout .error").inner_text()


def test_watch_a_live_run_grow(page, served, tmp_path):
    open_scenario(page, served, "troubleshooting.toml")
    page.select_option("select[name=variant]", "complex")
    page.select_option("select[name=tps]", "1")         # its 5 ticks take 5 s: the page sees each
    page.click("#start-run")
    page.wait_for_selector("#rn-graph svg circle")
    first = int(page.locator("#rn-graph svg").get_attribute("data-nodes"))
    page.wait_for_function(f"document.querySelector('#rn-graph svg') && "
                           f"+document.querySelector('#rn-graph svg').dataset.nodes > {first}")
    assert int(page.inner_text("#rn-tick")) >= 1
    page.wait_for_selector(".run-done")
    shot(page, tmp_path, "live-run")
    assert page.locator("#rn-graph svg circle").count() == int(page.locator("#rn-graph svg").get_attribute(
        "data-nodes"))


def test_open_a_report_and_filter_its_runs(page, served, tmp_path):
    page.goto(served["url"] + "#/reports")
    page.wait_for_selector("#rlist table")
    assert page.locator("tr.bad-report", has_text="not-ours.json").count() == 1
    page.click("a:text('complex.json')")
    page.wait_for_selector("#rtable tbody tr")
    total = page.inner_text("#rcount")
    assert total.endswith("of 400 runs")
    page.select_option("select[name=status]", "failed")
    page.wait_for_function("!document.querySelector('#rcount').textContent.startsWith('400 ')")
    rows = page.locator("#rtable tbody tr")
    assert all("failed" in t for t in rows.all_inner_texts() if "no run matches" not in t)
    page.select_option("select[name=status]", "all")
    page.fill("input[name=seed]", "45")
    page.wait_for_selector("#rtable tbody tr[data-seed='45']")
    page.wait_for_function("document.querySelector('#rcount').textContent.startsWith('1 of')")
    assert page.locator("#rtable tbody tr").count() == 1 and "45" in page.inner_text("#rtable tbody tr")
    shot(page, tmp_path, "report")


def test_a_report_that_is_not_ours_is_an_error_in_the_page(page, served):
    page.goto(served["url"] + "#/report/not-ours.json")
    assert "not a swarm eval report" in page.locator(".error").inner_text()


def test_compare_two_reports(page, served, tmp_path):
    page.goto(served["url"] + "#/reports")
    page.wait_for_selector("#rlist table")
    page.check("input.pick[value='baseline.json']")
    page.check("input.pick[value='complex.json']")
    page.click("#cmp")
    page.wait_for_selector("#cmptable tbody tr")
    text = page.inner_text("#cmptable")
    assert "baseline" in text and ("significant" in text)
    shot(page, tmp_path, "compare")


def test_learning_page_and_rollback_asks_first(page, served, tmp_path):
    page.goto(served["url"] + "#/learning")
    page.click("a[href='#/learning/user_troubleshooting']")
    page.wait_for_selector("#rollback")
    assert page.locator("tr", has_text="in use").first.inner_text().startswith("v2")
    page.once("dialog", lambda d: d.dismiss())          # the user says no: nothing changes
    page.click("#rollback")
    assert page.locator("tr", has_text="in use").first.inner_text().startswith("v2")
    shot(page, tmp_path, "learning")
    page.once("dialog", lambda d: d.accept())
    page.click("#rollback")
    page.wait_for_function("[...document.querySelectorAll('tr')].some(r => r.innerText.startsWith('v1') && "
                           "r.innerText.includes('in use'))")


def test_unknown_learning_key_is_an_error_in_the_page(page, served):
    page.goto(served["url"] + "#/learning/no-such-key")
    assert "no-such-key" in page.locator(".error").inner_text()


def test_servers_page_shows_status_and_log(page, served, tmp_path):
    pytest.importorskip("httpx", reason="the Servers page needs the 'llm' extra (httpx)")
    page.goto(served["url"] + "#/servers")
    page.wait_for_selector(".server")
    assert "not running" in page.inner_text(".server")
    page.wait_for_function("document.querySelector('.log').textContent.includes('listening')")
    shot(page, tmp_path, "servers")
    page.goto(served["url"] + "#/live")
    page.wait_for_selector("#levals .item")
    shot(page, tmp_path, "live-list")
