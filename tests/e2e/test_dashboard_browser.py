"""The operators' dashboard in a real headless Chromium (Debian's, driven by
Playwright): sign in, watch a running batch's progress bar reach 100 %, open
the batch page.  Screenshots are kept in ``tests/artifacts/``."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from conveyor.credentials import register_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.settings import Settings
from conveyor.tiers import Tiers
from workload_submitter import Workloads

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
JOBS = 8


@pytest.fixture
def page() -> Page:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def test_sign_in_watch_a_batch_finish_and_open_its_page(
    page: Page, start_gateway, start_worker, make_client, service_settings: Settings
) -> None:
    gateway = start_gateway()
    start_worker(workloads=True, threads=1)
    engine = create_ledger_engine(service_settings.database_url)
    operator = register_client(
        Ledger(engine), Tiers.load(service_settings.tiers_file, service_settings.max_priority), "ops", "enterprise", ["admin"]
    )
    engine.dispose()

    page.goto(f"{gateway.url}/dashboard")
    page.fill("#client-id", operator.client.id)
    page.fill("#client-secret", "not the secret")
    page.click("#signin-form button")
    page.wait_for_selector("#signin-error:has-text('wrong secret')")
    page.fill("#client-secret", operator.secret)
    page.click("#signin-form button")
    page.wait_for_selector("#overview", state="visible")

    workloads = Workloads(service_settings, make_client(name="acme"))
    try:
        batch = workloads.submit([("sleep", f"sleep-0.5-{n}.txt") for n in range(JOBS)])  # ~4 s on one thread
        bar = f".batch-row[data-id='{batch.id}'] .bar"
        page.wait_for_selector(bar, timeout=15_000)
        seen = []
        deadline = time.monotonic() + 60
        while (percent := int(page.get_attribute(bar, "data-percent"))) < 100:
            seen.append(percent)
            assert time.monotonic() < deadline, f"the bar stopped at {seen[-5:]}"
            time.sleep(0.2)
        assert any(0 < value < 100 for value in seen), f"the bar never showed the batch running: {sorted(set(seen))}"
        assert seen == sorted(seen), "the bar never moves backwards"
    finally:
        workloads.close()
    assert page.inner_text(f".batch-row[data-id='{batch.id}'] .status") == "COMPLETED"
    assert "acme" in page.inner_text(f".batch-row[data-id='{batch.id}']")
    page.wait_for_selector("#workers tbody tr")  # the live worker's heartbeat
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"), full_page=True)

    page.click(f".batch-row[data-id='{batch.id}'] a")
    page.wait_for_selector("#batch-page", state="visible")
    page.wait_for_selector(f"#jobs tbody tr:nth-child({JOBS})")
    states = page.locator("#jobs tbody tr td.status").all_inner_texts()
    assert states == ["SUCCEEDED"] * JOBS
    assert page.get_attribute("#batch-bar", "style").replace(" ", "") == "width:100%;"
    page.screenshot(path=str(ARTIFACTS / "dashboard-batch.png"), full_page=True)
