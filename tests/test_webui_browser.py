"""The web UI end to end in a real headless Chromium (Debian's package, driven by Playwright).

Open the page, start a tiny training run from the form, watch the loss curve grow, kill and
restart the server, find the same job listed and finished, then chat with its checkpoint. A
screenshot of each step is kept in test_artifacts/webui/. `make test` installs Chromium and sets
SWIFT_REQUIRE_BROWSER=1, so there this test runs; elsewhere it is skipped without a browser.
"""

from __future__ import annotations

import os
import shutil

import pytest
from helpers import REPO
from webui_helpers import WebUI, task_file

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "test_artifacts" / "webui"
STEPS = 150

if not CHROMIUM and not os.environ.get("SWIFT_REQUIRE_BROWSER"):
    pytest.skip("no chromium on this machine (make test installs it)", allow_module_level=True)


def _points(page) -> int:
    return int(page.get_attribute("#loss-chart", "data-points") or 0)


def test_train_watch_restart_and_chat_in_a_browser(tiny_qwen, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM, "SWIFT_REQUIRE_BROWSER is set but chromium is not installed"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    data = task_file(tmp_path / "data.jsonl")
    store = tmp_path / "store"
    ui = WebUI(store)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(ui.url)
            expect(page.locator("body")).to_have_attribute("data-ready", "true")  # form rendered
            page.select_option("#command", "sft")
            page.fill("#f-model", str(tiny_qwen))
            page.fill("#f-dataset", str(data))
            page.fill("#f-max_steps", str(STEPS))
            page.fill("#f-logging_steps", "1")
            page.fill("#f-save_steps", "50")
            page.fill("#f-per_device_train_batch_size", "4")
            expect(page.locator("#preview-cli")).to_contain_text(f"--max_steps {STEPS}")
            expect(page.locator("#preview-yaml")).to_contain_text(f"max_steps: {STEPS}", use_inner_text=False)
            page.click("#start")
            expect(page.locator("#job-status")).to_have_text("running", timeout=120_000)
            page.wait_for_function(
                "Number(document.querySelector('#loss-chart').dataset.points) >= 3", timeout=120_000
            )
            first = _points(page)
            page.screenshot(path=str(ARTIFACTS / "1-training.png"), full_page=True)
            page.wait_for_function(
                f"Number(document.querySelector('#loss-chart').dataset.points) > {first}", timeout=60_000
            )  # the curve grows while we watch
            job_id = page.text_content("#job-title")
            assert page.text_content("#job-status") == "running", "the run ended before the restart"

            ui.kill()
            ui = WebUI(store)
            page.goto(ui.url)
            row = page.locator(f"#jobs-table tr[data-job='{job_id}']")
            expect(row).to_have_count(1)
            page.screenshot(path=str(ARTIFACTS / "2-after-restart.png"), full_page=True)
            row.locator("button").click()
            expect(page.locator("#job-status")).to_have_text("finished", timeout=300_000)
            page.wait_for_function(
                f"Number(document.querySelector('#loss-chart').dataset.points) === {STEPS}", timeout=30_000
            )
            page.screenshot(path=str(ARTIFACTS / "3-finished.png"), full_page=True)
            job = ui.client.get(f"/api/jobs/{job_id}").json()
            assert job["returncode"] == 0 and job["attempt"] == 1  # ran through the restart, never re-run

            page.locator("#checkpoints li button").last.click()
            assert page.input_value("#chat-target").endswith(f"checkpoint-{STEPS}")
            page.fill("#chat-input", "3 + 4 =")
            page.click("#chat-send")
            expect(page.locator("#chat-history .msg.assistant.done")).to_have_count(1, timeout=120_000)
            assert page.text_content("#chat-error") == ""
            assert page.locator("#chat-history .msg.user").text_content() == "3 + 4 ="
            page.screenshot(path=str(ARTIFACTS / "4-chat.png"), full_page=True)
        finally:
            browser.close()
            ui.kill()


def test_artifacts_folder_is_ignored_by_git():
    assert "test_artifacts/" in (REPO / ".gitignore").read_text().split()
