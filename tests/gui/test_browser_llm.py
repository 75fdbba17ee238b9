"""An LLM-managed run watched in the browser: its Decisions panel fills in as
the model (the real SmolLM2, in process, a few ticks) answers, a row opens to
its prompt and candidates. The browser is launched as test_browser.py does
(its fixtures are imported); the screenshot is saved under the test's tmp dir."""

from __future__ import annotations

import pytest

from tests.gui import test_browser as _browser
from tests.gui.llm_world import make_llm_state, make_llm_world, skip_without_model

# the launch code and page fixture of test_browser.py, as this module's fixtures (page asks for served: ours)
browser, page = _browser.browser, _browser.page
open_scenario, shot = _browser.open_scenario, _browser.shot


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The LLM world served by uvicorn (the page fixture asks for this one)."""
    from swarm_engine.gui.server import serve_in_background
    from tests.conftest import wait_for

    state = make_llm_state(make_llm_world(tmp_path_factory.mktemp("llm-gui")))
    served = serve_in_background(state)
    wait_for(lambda: served.server.started, "the dashboard server to start", timeout=30)
    yield {"url": served.url, "state": state}
    served.stop()


def test_watch_the_decisions_of_an_llm_run(page, served, tmp_path):
    skip_without_model()
    open_scenario(page, served, "tiny_llm.toml")
    page.select_option("select[name=tps]", "4")
    page.click("#start-run")
    page.wait_for_selector("#rn-llmpanel")
    page.wait_for_selector("#rn-decisions .dec", timeout=180_000)          # the model loads, then answers
    page.wait_for_selector(".run-done", timeout=180_000)
    assert "calls" in page.inner_text("#rn-llm") and "applied" in page.inner_text("#rn-llm")
    rows = page.locator("#rn-decisions .dec")
    assert rows.count() >= 2
    heads = page.locator("#rn-decisions .dec-head").all_inner_texts()
    assert all(h.startswith("t") and "w" in h for h in heads)
    assert page.locator("#rn-decisions .dec .chip.ok, #rn-decisions .dec .chip.warn, "
                        "#rn-decisions .dec .chip.bad").count() >= 1          # applied or why not
    answered = page.locator("#rn-decisions .dec", has=page.locator(".chip.ok")).first
    answered.locator(".dec-head").click()
    body = answered.locator(".dec-body")
    body.wait_for()
    assert [t.lower() for t in body.locator("h3").all_inner_texts()][:2] == ["system", "user"]
    assert "Worker" in body.locator("pre.prompt").nth(1).inner_text()
    assert body.locator("ol.cands li").count() >= 2 and body.locator("ol.cands li.chosen").count() == 1
    shot(page, tmp_path, "live-llm-run")
    answered.locator(".dec-head").click()                                   # and it closes again
    assert answered.locator(".dec-body").count() == 0


def test_a_dead_backend_is_one_error_line_in_the_page(page, served, tmp_path):
    open_scenario(page, served, "dead_llm.toml")
    page.click("#start-run")
    err = page.locator("#rn-llmpanel .error")
    err.wait_for()
    assert "llama-server is not answering" in err.inner_text() and "\n" not in err.inner_text().strip()
    assert page.inner_text("#rn-state") == "failed" and page.locator(".error").count() == 1   # once
    shot(page, tmp_path, "live-llm-dead")
