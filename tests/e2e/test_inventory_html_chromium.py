"""The HTML inventory in a real headless Chromium, driven over the DevTools protocol.

No browser-automation dependency: Chromium's own `--remote-debugging-port` and aiohttp's websocket
client (already a runtime dependency) are enough to load the page, read console errors and network
requests, click a column header with real mouse and keyboard events, and take the screenshot the
README shows (docs/inventory.png).

Chromium is Debian's `chromium` package (CI installs it with apt). Locally a missing browser skips
the test with the reason; with CI=true it fails, so CI can never silently skip it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.rotator_profile import RotatorCloud
from rotation.cli import main
from tests.integration.test_inventory import HOSTILE_NAME, Scenario, assert_no_secret_value, seed_scenario

pytestmark = pytest.mark.chromium

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "inventory.png"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
VIEWPORT = {"width": 1440, "height": 900}


def chromium_binary() -> str:
    names = (os.environ.get("CHROMIUM_BIN", ""), *CHROMIUM_NAMES)
    found = next((path for name in names if name and (path := shutil.which(name))), None)
    if found:
        return found
    reason = "headless Chromium is not installed (Debian: apt-get install -y chromium)"
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(reason)


@pytest.fixture
def scenario(private_cloud: Callable[..., RotatorCloud]) -> Iterator[Scenario]:
    local = private_cloud(vaults=("kv-local", "kv-second"))
    with local.environment():
        yield seed_scenario(local)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[int]:
    """A headless Chromium with a throw-away profile; yields its DevTools port."""
    binary = chromium_binary()
    profile = tmp_path / "profile"
    log = (tmp_path / "chromium.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--window-size={VIEWPORT['width']},{VIEWPORT['height']}",
            "about:blank",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield _devtools_port(profile, process, tmp_path / "chromium.log")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _devtools_port(profile: Path, process: subprocess.Popen[bytes], log: Path) -> int:
    # With port 0 Chromium picks a free port and writes it to DevToolsActivePort in the profile.
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Chromium exited with {process.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        if marker.exists():
            first = marker.read_text().splitlines()[:1]
            if first and first[0].isdigit():
                return int(first[0])
        time.sleep(0.1)
    pytest.fail("Chromium did not open its DevTools port within 30 s")


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page target."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.events: list[dict[str, Any]] = []
        self._next_id = 0

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        await self.socket.send_json({"id": ident, "method": method, "params": params})
        while True:
            message = await self._receive()
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    async def wait_for(self, method: str) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            message = await self._receive()
            self.events.append(message)
            if message.get("method") == method:
                return message

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def click(self, selector: str) -> None:
        """A real left click in the middle of the element, as a user's mouse would make it."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)

    async def press_enter_on(self, selector: str) -> None:
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        for kind in ("keyDown", "keyUp"):
            await self.send(
                "Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13, text="\r"
            )

    async def _receive(self) -> dict[str, Any]:
        message = await self.socket.receive(timeout=30)
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"DevTools connection ended: {message.type}")
        data: dict[str, Any] = json.loads(message.data)
        return data

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries (CSP violations land here too)."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                found.append(f"log: {params['entry'].get('text')}")
        return found

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]


SORT_STATE = """(() => {
  const rows = Array.from(document.querySelectorAll('#inventory tbody tr'));
  const headers = Array.from(document.querySelectorAll('#inventory thead th'));
  const apps = rows.map(r => r.cells[5].dataset.sort);
  return {
    days: rows.map(r => r.cells[0].dataset.sort === '' ? null : parseFloat(r.cells[0].dataset.sort)),
    apps,
    appsInOrder: apps.every((a, i) => i === 0 || apps[i - 1].localeCompare(a) <= 0),
    sort: Object.fromEntries(headers.map(h => [h.dataset.key, h.getAttribute('aria-sort')])),
    status: document.getElementById('sort-status').textContent,
  };
})()"""

PAGE_FACTS = """(() => {
  const table = document.getElementById('inventory');
  const rows = Array.from(table.tBodies[0].rows);
  const visible = el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  return {
    rows: rows.length,
    visibleRows: rows.filter(visible).length,
    tableVisible: visible(table),
    marks: document.querySelectorAll('.timeline .mark').length,
    images: document.images.length,
    scripts: document.scripts.length,
    pwned: typeof window.__pwned,
    appNames: rows.map(r => r.cells[5].querySelector('.primary').textContent),
    title: document.title,
    caption: table.caption.textContent,
  };
})()"""


async def _inspect(port: int, page: Path) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        target = next(t for t in targets if t.get("type") == "page")
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024) as socket:
            tools = DevTools(socket)
            for domain in ("Runtime", "Log", "Page", "Network"):
                await tools.send(f"{domain}.enable")
            await tools.send("Emulation.setDeviceMetricsOverride", deviceScaleFactor=1, mobile=False, **VIEWPORT)
            await tools.send("Page.navigate", url=page.as_uri())
            await tools.wait_for("Page.loadEventFired")

            facts = await tools.evaluate(PAGE_FACTS)
            initial = await tools.evaluate(SORT_STATE)
            await tools.click('th[data-key="days"] button')
            after_click = await tools.evaluate(SORT_STATE)
            await tools.click('th[data-key="app"] button')
            by_app = await tools.evaluate(SORT_STATE)
            await tools.press_enter_on('th[data-key="days"] button')
            by_keyboard = await tools.evaluate(SORT_STATE)

            await tools.evaluate("document.activeElement.blur()")  # no focus ring in the screenshot
            metrics = await tools.send("Page.getLayoutMetrics")
            height = min(int(metrics["cssContentSize"]["height"]) + 1, 2400)
            shot = await tools.send(
                "Page.captureScreenshot",
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height, "scale": 1},
            )
            await asyncio.sleep(0.2)  # let late console events arrive before reading them
            await tools.evaluate("0")
            return {
                "facts": facts,
                "initial": initial,
                "after_click": after_click,
                "by_app": by_app,
                "by_keyboard": by_keyboard,
                "problems": tools.problems(),
                "urls": tools.requested_urls(),
                "png": base64.b64decode(shot["data"]),
            }


def _ascending(values: list[Any]) -> bool:
    present = [v for v in values if v is not None]
    return present == sorted(present) and values[: len(present)] == present  # empty ones last


def test_inventory_page_in_headless_chromium(
    browser: int, scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "inventory.html"
    assert main(["inventory", "--format", "html", "--output", str(page)]) == 0
    assert main(["inventory", "--format", "json"]) == 0
    credentials = json.loads(capsys.readouterr().out)["credentials"]
    expected_rows = len(credentials)
    dated = sum(1 for row in credentials if row["end"] is not None)
    assert_no_secret_value(scenario, page.read_text(encoding="utf-8"))

    seen = asyncio.run(_inspect(browser, page))

    assert seen["problems"] == [], "the page logged errors"
    assert {url.split(":", 1)[0] for url in seen["urls"]} == {"file"}, seen["urls"]  # nothing fetched

    facts = seen["facts"]
    assert facts["tableVisible"] and facts["rows"] == facts["visibleRows"] == expected_rows
    # Every credential with an end date is on the timeline; a federated one never expires.
    assert facts["marks"] == dated < expected_rows
    assert facts["images"] == 0 and facts["scripts"] == 1 and facts["pwned"] == "undefined"
    assert HOSTILE_NAME in facts["appNames"], "the display name is shown as text, not run as markup"

    initial, clicked = seen["initial"], seen["after_click"]
    assert initial["sort"]["days"] == "ascending" and _ascending(initial["days"])
    assert clicked["sort"]["days"] == "descending"
    assert [d for d in clicked["days"] if d is not None] == sorted(
        [d for d in initial["days"] if d is not None], reverse=True
    )
    assert clicked["days"] != initial["days"], "clicking the header changed the order"
    assert "Sorted by Days left, descending." in clicked["status"]

    by_app = seen["by_app"]
    assert by_app["sort"] == {**{k: "none" for k in by_app["sort"]}, "app": "ascending"}
    assert by_app["appsInOrder"] and by_app["apps"] != [a for a in seen["by_keyboard"]["apps"]]

    assert seen["by_keyboard"]["sort"]["days"] == "ascending"
    assert _ascending(seen["by_keyboard"]["days"])

    png: bytes = seen["png"]
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(png)
