"""Headless Chromium driven over the DevTools protocol: open a page, wait for it, ask it what a person sees.

`--dump-dom` alone cannot tell a visible column from one the grid renders off screen
(MLflow's runs table keeps a buffer of columns in the DOM beyond the viewport), so the
checks here ask the live page: is the text's box inside the 1600x1000 window, and is
it the element on top at its centre (not hidden under a side panel)?
Uses `websockets` (a Prefect dependency) in its synchronous form; no Selenium.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

WIDTH, HEIGHT = 1600, 1000

# For each wanted text: the smallest element whose own text contains it, and whether a person sees it.
_VISIBLE_JS = """
(wanted) => wanted.map((text) => {
  const hits = [...document.querySelectorAll('body *')].filter(
    (el) => el.children.length === 0 ? (el.textContent || '').includes(text)
          : [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.includes(text)));
  for (const el of hits) {
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    const inside = r.left >= 0 && r.top >= 0 && r.right <= innerWidth + 1 && r.bottom <= innerHeight + 1;
    const x = Math.min(r.left + Math.min(r.width, 40) / 2, innerWidth - 1), y = r.top + r.height / 2;
    const top = document.elementFromPoint(x, y);
    const onTop = !!top && (top === el || el.contains(top) || top.contains(el));
    if (inside && onTop) return {text, seen: true};
  }
  return {text, seen: false, found: hits.length};
})
"""


class Chromium:
    """One headless Chromium with a fresh profile, for a `with` block; `page(url)` opens a tab."""

    def __init__(self, binary: str, workdir: Path):
        self.binary, self.workdir = binary, workdir

    def __enter__(self) -> "Chromium":
        profile = tempfile.mkdtemp(prefix="profile-", dir=self.workdir)
        # --no-sandbox: Chromium refuses to run as root (CI, containers) with its sandbox on.
        self.proc = subprocess.Popen(
            [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", "--remote-debugging-port=0",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if m := re.search(r"DevTools listening on ws://([^/]+)/", line):
                self.host = m.group(1)
                return self
            if not line and self.proc.poll() is not None:
                break
        self.proc.kill()
        raise RuntimeError("Chromium did not open its DevTools port")

    def __exit__(self, *exc) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def page(self, url: str) -> "Page":
        request = urllib.request.Request(f"http://{self.host}/json/new?about:blank", method="PUT")
        target = json.loads(urllib.request.urlopen(request, timeout=30).read())
        page = Page(connect(target["webSocketDebuggerUrl"], max_size=2**27, open_timeout=30))
        page.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)
        page.call("Page.navigate", url=url)
        return page


class Page:
    """A tab: evaluate JavaScript, wait for a condition, check what is visible, take a screenshot."""

    def __init__(self, socket):
        self.socket, self.next_id = socket, 0

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=120))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def visible(self, texts: list[str]) -> list[str]:
        """The texts of `texts` that are not visible on the first screen (empty: all are)."""
        found = self.evaluate(f"({_VISIBLE_JS})({json.dumps(texts)})") or []
        return [f["text"] for f in found if not f["seen"]]

    def wait_visible(self, texts: list[str], timeout_s: float) -> list[str]:
        """Poll until every text is visible or `timeout_s` passes; returns those still not visible."""
        deadline = time.monotonic() + timeout_s
        while True:
            missing = self.visible(texts)
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(1)

    def title(self) -> str:
        return self.evaluate("document.title") or ""

    def screenshot(self, out: Path) -> Path:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return out

    def close(self) -> None:
        self.socket.close()
