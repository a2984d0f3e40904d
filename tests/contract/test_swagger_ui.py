"""The Swagger UI page, opened in a real browser (Debian's Chromium, driven by Playwright).

What a reader of the docs does: the page renders the document (every tag), Authorize takes the
access token from a login, and "Try it out" on a bearer route gets a 200 from the live stack.
A screenshot of the result is left in the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from pinstack_gateway.openapi import OPENAPI_PATH, TAGS
from tests.contract.conftest import RunningStack

# The system's browser: Playwright drives it, no browser download (``make install-browser``).
CHROMIUM = os.environ.get("PINSTACK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def chromium() -> str:
    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: run `make install-browser`"
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 2000})
    opened = await context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    try:
        yield opened
    finally:
        await context.close()


async def test_swagger_ui_renders_every_tag_and_tries_a_bearer_route(
    stack: RunningStack, page: Page, tmp_path: Path
) -> None:
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    await page.goto(f"{stack.url}/swagger/index.html")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Pinstack API")
    assert await page.get_by_text("Unable to render this definition").count() == 0
    assert OPENAPI_PATH in await page.locator(".swagger-ui .info").inner_text()
    for tag in TAGS:
        await expect(page.locator(f'.opblock-tag[data-tag="{tag["name"]}"]')).to_be_visible()

    account = await stack.register()
    await page.locator(".auth-wrapper .btn.authorize").click()
    dialog = page.locator(".modal-ux")
    await dialog.locator("input").first.fill(account.access_token)
    await dialog.locator(".auth-btn-wrapper .btn.authorize").click()
    await expect(dialog.locator(".auth-btn-wrapper")).to_contain_text("Logout")
    await dialog.locator(".btn-done").click()

    operation = page.locator(
        "#operations-notifications-unread_count_api_v1_notification_unread_count_get"
    )
    await operation.locator(".opblock-summary").click()
    await operation.locator(".try-out__btn").click()
    await operation.locator(".execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status")
    await expect(status).to_have_text("200")
    body = await operation.locator(
        ".live-responses-table .response .response-col_description"
    ).inner_text()
    assert '"count": 0' in body, body
    await page.screenshot(path=tmp_path / "swagger-ui.png", full_page=True)
    assert not failures, failures
