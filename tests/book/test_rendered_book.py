"""The built HTML book, opened in headless Chromium: equations typeset, figures and tables present, no
request that failed or left the machine, every chapter shaped as a textbook chapter (objectives,
summary, exercises, Chinese summary), exercise solutions hidden until the reader clicks, and no table
cell in scientific notation.

Run after ``jupyter-book build .`` (``make book-strict`` does both). Marked ``book`` so that the unit
test run, which does not build the book, leaves it out. ``XCATREC_BOOK`` points the tests at another
built book (a folder holding ``_toc.yml`` and ``_build/html``); the page-specific tests expect this
book's chapters, the ones that walk ``_toc.yml`` work on any book.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.book

BOOK = Path(os.environ.get("XCATREC_BOOK") or Path(__file__).resolve().parents[2])
HTML = BOOK / "_build" / "html"

#: A float as Python and pandas print it in scientific notation (``5.1738e-04``), which a table for
#: readers never shows (``xcatrec.book.table`` writes fixed point).
SCIENTIFIC = re.compile(r"\d\.\d+e[-+]?\d+", re.IGNORECASE)

#: What a solution is in the rendered page: a ``dropdown`` admonition (sphinx-togglebutton) or a code
#: cell tagged ``hide-cell``/``hide-input``/``hide-output`` (myst-nb renders those as ``<details>``).
DROPDOWN = ".admonition.dropdown"
HIDDEN_CELL = "div.cell details.hide"


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


def toc_pages() -> list[str]:
    """Every page of the book in ``_toc.yml`` order, as the path of its HTML file without ``.html``."""
    import yaml

    pages: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            pages.extend(node[k] for k in ("root", "file") if isinstance(node.get(k), str))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load((BOOK / "_toc.yml").read_text(encoding="utf-8")))
    return list(dict.fromkeys(re.sub(r"\.(md|ipynb)$", "", p) for p in pages))


def chapter_notebooks() -> list[str]:
    """The pages of ``_toc.yml`` that are executable chapters (notebooks)."""
    pages = [p for p in toc_pages() if (BOOK / f"{p}.ipynb").is_file()]
    assert pages, f"no notebook chapter listed in {BOOK / '_toc.yml'}"
    return pages


def click(driver, element) -> None:
    """Click as a reader would, with the element scrolled clear of the theme's sticky header."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def shown_after_click(driver, trigger, content) -> bool:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    click(driver, trigger)
    try:
        WebDriverWait(driver, 5).until(lambda d: any(e.is_displayed() for e in content))
    except TimeoutException:
        return False
    return True


def dropdown_problem(driver, box) -> str | None:
    """What is wrong with a dropdown admonition as a hidden solution, or ``None``."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    try:  # sphinx-togglebutton's script adds its button once the page has loaded
        WebDriverWait(driver, 10).until(lambda d: box.find_elements(By.CSS_SELECTOR, ".toggle-button"))
    except TimeoutException:
        return "sphinx-togglebutton did not turn it into a toggle"
    title = box.find_element(By.XPATH, "./*[contains(concat(' ', @class, ' '), ' admonition-title ')]")
    body = box.find_elements(By.XPATH, "./*[not(contains(concat(' ', @class, ' '), ' admonition-title '))]")
    if not body:
        return "it is empty"
    if any(e.is_displayed() for e in body):
        return "it is shown before the reader clicks"
    if not shown_after_click(driver, title, body):
        return "it stays hidden after a click on its title"
    return None


def hidden_cell_problem(driver, details) -> str | None:
    """What is wrong with a hidden code cell (myst-nb ``<details>``) as a hidden solution, or ``None``."""
    from selenium.webdriver.common.by import By

    summary = details.find_element(By.XPATH, "./summary")
    content = details.find_elements(By.XPATH, "./*[not(self::summary)]")
    if not content:
        return "it is empty"
    if details.get_property("open") or any(e.is_displayed() for e in content):
        return "it is shown before the reader clicks"
    if not shown_after_click(driver, summary, content):
        return "it stays hidden after a click on its summary"
    return None


EXERCISES = "//section[h2[starts-with(normalize-space(.), 'Exercises')]]"


def test_exercise_solutions_are_hidden_until_clicked(server, browser):
    from selenium.webdriver.common.by import By

    problems, checked = [], 0
    for page in toc_pages():
        open_page(browser, f"{server}/{page}.html")
        for section in browser.find_elements(By.XPATH, EXERCISES):
            dropdowns = section.find_elements(By.CSS_SELECTOR, DROPDOWN)
            cells = section.find_elements(By.CSS_SELECTOR, HIDDEN_CELL)
            if not dropdowns and not cells:
                problems.append(f"{page}: its Exercises section has no solution behind a toggle")
            shown = [e for e in section.find_elements(By.CSS_SELECTOR, "div.cell_input") if e.is_displayed()]
            if shown:  # before any click, so a visible input is a solution without a toggle
                problems.append(f"{page}: {len(shown)} code cell(s) under Exercises shown without a toggle")
            for title in section.find_elements(By.CSS_SELECTOR, ".admonition:not(.dropdown) > .admonition-title"):
                if title.text.strip().startswith("Solution"):
                    problems.append(f"{page}: the admonition {title.text.strip()!r} is not a dropdown")
            for kind, items, check in (("dropdown", dropdowns, dropdown_problem),
                                       ("hidden cell", cells, hidden_cell_problem)):
                for number, item in enumerate(items, 1):
                    checked += 1
                    problem = check(browser, item)
                    if problem:
                        problems.append(f"{page}: solution {kind} {number}: {problem}")
    assert checked, "no page has an Exercises section with solutions"
    assert not problems, "\n".join(problems)


def test_every_chapter_has_objectives_summary_exercises_and_a_chinese_summary(server, browser):
    from selenium.webdriver.common.by import By

    ending, problems = ["Summary", "Exercises", "中文摘要"], []
    for page in chapter_notebooks():
        open_page(browser, f"{server}/{page}.html")
        titles = [t.strip() for t in browser.execute_script(
            "return Array.from(document.querySelectorAll('article section > h2'))"
            ".map(h => h.textContent.replace(/#\\s*$/, ''));")]
        if titles[-len(ending):] != ending:
            problems.append(f"{page}: its last sections are {titles[-len(ending):]}, not {ending}")
        objectives = browser.find_elements(
            By.XPATH, "//div[contains(@class, 'admonition')]/p[contains(@class, 'admonition-title')]"
                      "[normalize-space(.) = 'What you will learn']")
        if not objectives:
            problems.append(f"{page}: no 'What you will learn' admonition")
        chinese = browser.find_elements(By.XPATH, "//section[h2[starts-with(normalize-space(.), '中文摘要')]]")
        text = browser.execute_script("return arguments[0].textContent;", chinese[0]) if chinese else ""
        if len(re.findall(r"[\u4e00-\u9fff]", text)) < 40:  # a few sentences, not a heading alone
            problems.append(f"{page}: the 中文摘要 section holds no Chinese summary")
    assert not problems, "\n".join(problems)


def test_no_table_shows_a_float_in_scientific_notation(server, browser):
    found, tables = [], 0
    for page in toc_pages():
        open_page(browser, f"{server}/{page}.html")
        cells = browser.execute_script(
            "return Array.from(document.querySelectorAll('table')).map("
            "t => Array.from(t.querySelectorAll('td, th')).map(c => c.textContent));")
        tables += len(cells)
        found += [f"{page}: {text.strip()!r}" for table in cells for text in table if SCIENTIFIC.search(text)]
    assert tables, "the book has no table to check"
    assert not found, "\n".join(found)
