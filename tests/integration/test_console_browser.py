"""The admin console in a real browser: headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium) logs in, asks on "Try it", opens the trace, replies to
and resolves a ticket handed off from a Slack thread (the reply reaches that thread, at the
Slack Web API double); screenshots of each step land in the test's tmp dir.

And `serve --demo` (what `make run` starts) prints a one-time console login with the URL."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.settings import Settings
from tests.integration.test_handoff import ask, configured, human, posted
from tests.integration.test_slack import JORDAN as SLACK_JORDAN
from tests.integration.test_slack import PUBLIC_CHANNEL, SECRET, send
from tests.support.console import login
from tests.support.model_server import unused_port
from tests.support.service import running
from tests.support.slack_api import SlackApiDouble

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
NAME, PASSWORD = "alice", "correct horse battery staple"
JORDAN = "jordan.kim@harborlight.example"


@pytest.fixture
def chrome(tmp_path: Path) -> Iterator[object]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(DRIVER, os.X_OK)):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chrome-profile'}")
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def drive(driver: object, url: str, shots: Path, ticket_id: str) -> dict[str, str]:
    """The whole walk through the console; runs in a thread (Selenium blocks)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    d = driver  # type: ignore[assignment]
    wait = WebDriverWait(d, 60)

    def shot(name: str) -> None:
        d.save_screenshot(str(shots / f"{name}.png"))

    def gone(old: object) -> Callable[[object], bool]:
        """The page holding `old` was replaced. Chromedriver reports an element of a page
        being torn down either as stale or, mid-navigation, as a node that "does not belong
        to the document"; both mean the old page is gone."""

        def check(_: object) -> bool:
            try:
                old.is_enabled()  # type: ignore[attr-defined]
            except StaleElementReferenceException:
                return True
            except WebDriverException as error:
                if "does not belong to the document" in str(error):
                    return True
                raise
            return False

        return check

    def click_through(element: object) -> None:
        old = d.find_element(By.TAG_NAME, "html")
        element.click()  # type: ignore[attr-defined]
        wait.until(gone(old))

    def submit(button_id: str, then: str) -> None:
        click_through(d.find_element(By.ID, button_id))
        wait.until(ec.presence_of_element_located((By.ID, then)))

    seen: dict[str, str] = {}
    d.get(f"{url}/admin/try")  # behind the login: the login page, then back here
    wait.until(ec.presence_of_element_located((By.ID, "password")))
    seen["login_url"] = d.current_url
    shot("1-login")
    d.find_element(By.ID, "name").send_keys(NAME)
    d.find_element(By.ID, "password").send_keys(PASSWORD)
    submit("login", "try-form")
    seen["after_login"] = d.current_url
    seen["who"] = d.find_element(By.ID, "who").text

    for question in ("How long does a guest Wi-Fi pass last?", "I need to talk to a human"):
        Select(d.find_element(By.ID, "as")).select_by_value(JORDAN)
        box = d.find_element(By.ID, "question")
        box.clear()
        box.send_keys(question)
        submit("ask", "preview")
        if "Wi-Fi" in question:
            seen["preview"] = d.find_element(By.ID, "preview").text
            seen["mode"] = d.find_element(By.ID, "answer-mode").text
            shot("2-try-it")
            trace_link = d.find_element(By.ID, "trace-link")
            seen["request_id"] = trace_link.text.split()[-1]
            click_through(trace_link)
            wait.until(ec.presence_of_element_located((By.ID, "trace-summary")))
            seen["trace_id"] = d.find_element(By.ID, "trace-id").text
            seen["trace_page"] = d.find_element(By.TAG_NAME, "main").text
            seen["waterfall"] = str(len(d.find_elements(By.CSS_SELECTOR, "svg.waterfall rect")))
            shot("3-trace")
            d.get(f"{url}/admin/try")
            wait.until(ec.presence_of_element_located((By.ID, "try-form")))
        else:
            seen["handoff_preview"] = d.find_element(By.ID, "preview").text

    d.get(f"{url}/admin/tickets")
    wait.until(ec.presence_of_element_located((By.ID, "ticket-list")))
    ticket = d.find_element(By.ID, f"ticket-{ticket_id}")
    seen["ticket_id"] = ticket_id
    ticket.find_element(By.NAME, "message").send_keys("Hi Jordan, I'm looking into it now.")
    shot("4-tickets")
    click_through(ticket.find_element(By.CSS_SELECTOR, "button.reply"))
    seen["replied"] = wait.until(ec.presence_of_element_located((By.ID, "done"))).text
    ticket = d.find_element(By.ID, f"ticket-{seen['ticket_id']}")
    ticket.find_element(By.NAME, "note").send_keys("Called Jordan; sorted.")
    click_through(ticket.find_element(By.CSS_SELECTOR, "button.resolve"))
    seen["resolved"] = wait.until(ec.presence_of_element_located((By.ID, "done"))).text
    d.get(f"{url}/admin/tickets?status=closed")
    wait.until(ec.presence_of_element_located((By.ID, "ticket-list")))
    seen["closed_list"] = d.find_element(By.ID, "ticket-list").text
    shot("5-resolved")

    d.get(f"{url}/admin")
    wait.until(ec.presence_of_element_located((By.ID, "outcomes")))
    seen["charts"] = str(len(d.find_elements(By.CSS_SELECTOR, "svg.chart")))
    shot("6-dashboard")
    d.get(f"{url}/admin/audit")
    wait.until(ec.presence_of_element_located((By.ID, "audit")))
    seen["audit"] = d.find_element(By.ID, "audit").text
    submit("logout", "login")
    seen["after_logout"] = d.current_url
    return seen


@pytest.mark.browser
async def test_console_in_headless_chromium(
    chrome: object, demo_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANSWERDESK_ADMIN_USER", NAME)
    monkeypatch.setenv("ANSWERDESK_ADMIN_PASSWORD", PASSWORD)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    thread = "1700002900.000100"
    with SlackApiDouble(bot_token="xoxb-test") as double:
        double.add_user(SLACK_JORDAN, JORDAN)
        double.add_channel(PUBLIC_CHANNEL, kind="public", members=[SLACK_JORDAN])
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
        settings = configured(demo_settings.data_dir, double)
        async with running(settings) as (url, services):
            # A ticket from a Slack thread: "Talk to a human" on an answer there.
            request_id = await ask(url, double, thread)
            await send(url, human(request_id, thread))
            await posted(double, "AD-1", thread=thread)
            seen = await asyncio.to_thread(drive, chrome, url, shots, "AD-1")
            reply = await posted(double, "looking into it now", thread=thread)
            note = await posted(double, "Called Jordan; sorted.", thread=thread)
            ticket = await services.tickets.for_request(request_id)

    assert "/admin/login?next=" in seen["login_url"]
    assert seen["after_login"].endswith("/admin/try") and seen["who"] == NAME
    assert "24 hours" in seen["preview"] and seen["mode"] == "answer"
    assert f"request {seen['request_id']}" in seen["preview"]  # the chat footer
    assert seen["trace_id"] == seen["request_id"]
    assert "retrieval" in seen["trace_page"] and "wifi-guests" in seen["trace_page"]
    assert int(seen["waterfall"]) >= 5  # one bar per stage
    assert "Ticket AD-" in seen["handoff_preview"]
    assert seen["replied"] == f"Done: replied {seen['ticket_id']}."
    assert seen["resolved"] == f"Done: resolved {seen['ticket_id']}."
    assert seen["ticket_id"] in seen["closed_list"] and "Resolved after" in seen["closed_list"]
    assert ticket is not None and ticket["id"] == "AD-1" and ticket["status"] == "closed"
    assert ticket["first_response_s"] is not None and ticket["resolution_s"] is not None
    # The agent's reply and closing note reached the asker's thread, signed by the agent.
    assert NAME in reply["text"] and reply["thread_ts"] == note["thread_ts"] == thread
    assert seen["charts"] == "7"
    for action in ("login", "try_it", "trace_view", "ticket_reply", "ticket_resolve"):
        assert re.search(rf"{NAME}\s+{action}", seen["audit"]), action
    assert "/admin/login" in seen["after_logout"]
    names = sorted(p.name for p in shots.iterdir())
    assert names == [
        "1-login.png",
        "2-try-it.png",
        "3-trace.png",
        "4-tickets.png",
        "5-resolved.png",
        "6-dashboard.png",
    ]
    assert all((shots / n).stat().st_size > 5000 for n in names)


def _serve(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("ANSWERDESK_ADMIN")
    }
    env["ANSWERDESK_DATA_DIR"] = str(data_dir)
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _printed_login(process: subprocess.Popen[str]) -> tuple[str, str]:
    deadline = time.monotonic() + 240
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        found = re.search(
            r"Admin console: (\S+) — one-time demo login: user (\S+), password (\S+)", line
        )
        if found:
            assert found[2] == "demo"
            return found[1], found[3]
        assert line or process.poll() is None, "serve exited"
    raise AssertionError("serve printed no console login")


async def test_serve_demo_prints_a_one_time_login(demo_settings: Settings) -> None:
    """What `make run` does: every start prints a fresh login, the previous one stops
    working, and only its hash is stored."""
    port = unused_port()
    passwords = []
    for _ in range(2):
        process = _serve(demo_settings.data_dir, port)
        try:
            console_url, password = await asyncio.to_thread(_printed_login, process)
            assert console_url == f"http://127.0.0.1:{port}/admin"
            passwords.append(password)
            base = console_url.removesuffix("/admin")
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
                for earlier in passwords[:-1]:
                    assert (await login(s, base, "demo", earlier)).status == 401
                assert (await login(s, base, "demo", password)).status == 302
        finally:
            process.terminate()
            process.wait(30)
    assert passwords[0] != passwords[1]
    stored = b"".join(f.read_bytes() for f in demo_settings.data_dir.glob("answerdesk.db*"))
    assert b"scrypt$" in stored
    assert all(p.encode() not in stored for p in passwords)
