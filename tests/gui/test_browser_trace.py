"""A run's trace in a real browser: a report written by ``swarm eval --trace``
shows a trace link per run; the link opens that run's events (paged); a report
without a trace has no link; a trace that is gone is its error line. The
browser is launched as in test_browser.py (its fixtures are imported)."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.gui import test_browser as launched
from tests.gui.test_trace_api import SEED, lines_of, traced_eval
from tests.inprocess import isolate

browser, page, shot = launched.browser, launched.page, launched.shot     # Chromium as test_browser.py starts it

LONG = 450                     # events of the long run: three pages of 200


@pytest.fixture(scope="module")
def traced(served, tmp_path_factory):
    reports = served["world"]["reports"]
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp_path_factory.mktemp("home"))
        report, trace = traced_eval(reports, "traced")
    doc = json.loads(report.read_text())
    gone = reports / "gone.jsonl"
    shutil.copy(trace, gone)
    (reports / "gone.json").write_text(json.dumps({**doc, "manifest": {**doc["manifest"], "trace": str(gone)}}))
    gone.unlink()
    rows = lines_of(trace, SEED)
    long = reports / "long.jsonl"
    long.write_text("".join(json.dumps({**rows[i % len(rows)], "tick": i}) + "\n" for i in range(LONG)))
    (reports / "long.json").write_text(json.dumps({**doc, "manifest": {**doc["manifest"], "trace": str(long)}}))
    return {"report": report, "trace": trace}


def test_a_runs_trace_link_opens_its_events(page, served, traced, tmp_path):
    page.goto(served["url"] + "#/report/traced.json")
    page.wait_for_selector("#rtable tbody tr a.trace-link")
    assert page.locator("#rtable thead th", has_text="Events").count() == 1
    shot(page, tmp_path, "report-with-trace")
    page.locator("#rtable tbody tr").nth(3).locator("a.trace-link").click()
    page.wait_for_selector("table.trace tbody tr")
    assert page.url.endswith("#/report/traced.json/run/3")
    expected = lines_of(traced["trace"], SEED + 3)
    rows = page.locator("table.trace tbody tr")
    assert rows.count() == len(expected)
    for i, e in enumerate(expected):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[1:5] == [str(e["tick"]), f"w{e['worker']}", e["action"], e["target"] or ""]
        assert cells[6] == e["outcome"] and cells[7] == e["decided_by"]
        assert cells[8] == (e["observation"] or "–")
        chip = rows.nth(i).locator("td:nth-child(7) .chip")
        assert chip.get_attribute("class") == "chip " + {"ok": "ok", "fail": "bad", "error": "warn"}[e["outcome"]]
    assert f"seed {SEED + 3}" in page.inner_text("h1")
    assert f"{len(expected)} events" in page.inner_text("#tcount")
    assert page.locator("#tpager").is_hidden()                  # one page: no pager
    assert "success" in page.inner_text("#tcards") or "failed" in page.inner_text("#tcards")
    shot(page, tmp_path, "trace")
    page.locator("a", has_text="the report").click()
    page.wait_for_selector("#rtable tbody tr a.trace-link")


def test_a_long_trace_pages(page, served, traced, tmp_path):
    page.goto(served["url"] + "#/report/long.json/run/0")
    page.wait_for_selector("table.trace tbody tr")
    assert page.locator("table.trace tbody tr").count() == 200
    assert page.inner_text("#tpage") == f"1–200 of {LONG}" and page.locator("#tprev").is_disabled()
    page.click("#tnext")
    page.wait_for_function("document.getElementById('tpage').textContent.startsWith('201')")
    assert page.locator("table.trace tbody tr").first.locator("td").nth(1).inner_text() == "200"
    page.click("#tnext")
    page.wait_for_function("document.getElementById('tpage').textContent.startsWith('401')")
    assert page.locator("table.trace tbody tr").count() == LONG - 400 and page.locator("#tnext").is_disabled()
    shot(page, tmp_path, "trace-last-page")


def test_a_report_without_a_trace_has_no_link(page, served, traced):
    page.goto(served["url"] + "#/report/baseline.json")
    page.wait_for_selector("#rtable tbody tr td")
    assert page.locator("a.trace-link").count() == 0
    assert page.locator("#rtable thead th", has_text="Events").count() == 0


def test_a_trace_that_is_gone_is_its_error_line(page, served, traced, tmp_path):
    page.goto(served["url"] + "#/report/gone.json")
    page.wait_for_selector("#rtable tbody tr a.trace-link")
    page.locator("a.trace-link").first.click()
    err = page.locator("#tbody .error")
    err.wait_for()
    assert "gone.jsonl" in err.inner_text() and "gone" in err.inner_text()
    assert "\n" not in err.inner_text().strip()
    shot(page, tmp_path, "trace-gone")
