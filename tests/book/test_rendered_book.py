"""The built HTML book, opened in headless Chromium: equations typeset, figures and tables present, and
no request that failed or left the machine.

Run after ``jupyter-book build .`` (``make book-strict`` does both). Marked ``book`` so that the unit
test run, which does not build the book, leaves it out.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.book

HTML = Path(__file__).resolve().parents[2] / "_build" / "html"


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").is_file():
        pytest.fail("The book is not built: run `jupyter-book build . -W` first (make book-strict does).")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.fail("Headless Chromium is missing: install the Debian packages chromium and chromium-driver "
                    "(.ci/run does).")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def requests_of(driver) -> tuple[list[str], list[str]]:
    """URLs the page requested, and the ones that failed (from Chrome's performance log)."""
    import json

    urls, failed = [], []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.loadingFailed":
            failed.append(message["params"].get("errorText", "?"))
        elif message["method"] == "Network.responseReceived" and message["params"]["response"]["status"] >= 400:
            url = message["params"]["response"]["url"]
            if not url.endswith("/favicon.ico"):  # asked for by the browser itself, not by the page
                failed.append(url)
    return urls, failed


def open_page(driver, url: str):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("performance")  # drop earlier entries
    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    return requests_of(driver)


def test_pages_load_with_no_failed_or_outside_requests(server, browser):
    for page in ("index.html", "chapters/data.html", "chapters/bibliography.html"):
        urls, failed = open_page(browser, f"{server}/{page}")
        assert not failed, (page, failed)
        outside = [u for u in urls if not (u.startswith(server) or u.startswith("data:") or u.startswith("blob:"))]
        assert not outside, (page, outside)


def test_figures_and_tables_render(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_page(browser, f"{server}/chapters/data.html")
    images = browser.find_elements(By.CSS_SELECTOR, "img")
    for img in images:  # lazy images load only once they are scrolled into view
        browser.execute_script("arguments[0].scrollIntoView();", img)
    WebDriverWait(browser, 30).until(lambda d: all(d.execute_script("return arguments[0].complete", i) for i in images))
    loaded = [img for img in images if browser.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", img)]
    assert len(loaded) >= 1
    assert browser.find_elements(By.CSS_SELECTOR, "table")
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "Electronics" in text and "NDCG@10" in text


def test_equations_are_typeset(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = next((p for p in ("chapters/loss.html", "chapters/concepts.html", "chapters/faq.html")
                 if (HTML / p).is_file()), None)
    assert page, "no page with equations was built"
    urls, failed = open_page(browser, f"{server}/{page}")
    assert not failed
    assert any("mathjax" in u for u in urls), "MathJax was not loaded from the book itself"
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "mjx-container"))
    assert browser.find_elements(By.CSS_SELECTOR, "mjx-container")
