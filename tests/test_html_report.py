"""The static HTML report: escaped untrusted outputs, the word diff, and a real headless browser
(Chromium driven by Playwright) loading the page, filtering harmful flips, searching by id."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_gate import ACCURACY_GATE, baseline_of, make_result

from harness.gate import check
from harness.report import write_reports
from harness.report.html import word_diff
from harness.results import RunState
from harness.session import compare_results

CHROMIUM = "/usr/bin/chromium"  # Debian's chromium: the README's test command / .ci/run installs it
MALICIOUS = "<img src=x onerror=alert(1)> <script>alert(2)</script>"


def planted_state() -> RunState:
    """sentiment: ``lora`` was right on all 60 examples when accepted; now 7 break (one of them
    answering with an HTML payload), one changes its wording only; base is compared too."""
    accepted = make_result([1.0] * 60)
    current = make_result([0.0 if i in (2, 5, 11, 17, 23, 31, 47) else 1.0 for i in range(60)])
    current.predictions[5] = MALICIOUS
    current.predictions[40] = current.predictions[40] + " indeed"
    current.slices = {"label": {"positive": current.example_ids[0::2], "negative": current.example_ids[1::2]}}
    base = make_result([0.0 if i % 2 else 1.0 for i in range(60)], candidate="base")
    state = RunState(results=[current, base])
    state.gates += check(current, baseline_of(accepted, base), ACCURACY_GATE)
    state.gates += check(base, baseline_of(accepted, base), ACCURACY_GATE)
    state.comparisons.append(compare_results(base, current, "accuracy")[1])
    return state


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html")
    write_reports(planted_state(), out)
    return out


def test_word_diff_marks_deleted_and_inserted_words():
    segments = [(s.op, s.text) for s in word_diff("the red cat sat", "the black cat sat down")]
    assert segments == [("equal", "the"), ("delete", "red"), ("insert", "black"), ("equal", "cat sat"),
                        ("insert", "down")]


def test_outputs_are_escaped_in_the_page_source(report):
    text = (report / "index.html").read_text(encoding="utf-8")
    assert "<img src=x" not in text and "<script>alert" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    # self-contained: every src / href is inline data or an anchor on the page (no server, no CDN)
    assert re.findall(r'(?:src|href)="(?!data:|#)[^"]*"', text) == []
    assert "http://" not in text and "https://" not in text


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, report):
    """The report opened from disk, with every console message, page error and dialog collected."""
    page = browser.new_page()
    events: list[str] = []
    page.on("console", lambda message: events.append(f"console {message.type}: {message.text}"))
    page.on("pageerror", lambda error: events.append(f"page error: {error}"))
    page.on("dialog", lambda dialog: (events.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.goto((report / "index.html").as_uri())
    page.wait_for_load_state("load")
    page.events = events
    yield page
    page.close()


def _visible_rows(section) -> list[tuple[str, str]]:
    rows = section.locator("tr.example:not(.hidden)")
    return [(rows.nth(i).get_attribute("data-candidate"), rows.nth(i).get_attribute("data-id"))
            for i in range(rows.count())]


def test_the_page_loads_without_console_errors_and_verdicts_come_first(page, report):
    assert page.events == []
    assert page.locator("#run-verdict").inner_text().startswith("FAIL")
    first_heading = page.locator("h2").first.inner_text()
    assert first_heading == "Suites"
    page.screenshot(path=str(report / "screenshot.png"), full_page=True)
    assert (report / "screenshot.png").stat().st_size > 10_000


def test_the_harmful_filter_shows_exactly_the_recorded_harmful_rows(page, report):
    document = json.loads((report / "results.json").read_text())
    harmful = {(g["candidate"], i) for g in document["state"]["gates"] if g["metric"] == "accuracy"
               for i in g["details"]["flips"]["ids"]["harmful"]}
    assert {i for _, i in harmful} == {f"ex-{i:04d}" for i in (2, 5, 11, 17, 23, 31, 47)}
    section = page.locator("section[data-suite=sentiment]")
    section.locator(".filter-metric").select_option("accuracy")
    section.locator(".filter-flip").select_option("harmful")
    shown = _visible_rows(section)
    assert sorted(shown) == sorted(harmful)
    assert section.locator(".shown-count").inner_text() == str(len(harmful))
    section.locator(".filter-flip").select_option("churn")
    assert _visible_rows(section) == [("lora", "ex-0040")]
    section.locator(".filter-flip").select_option("harmful")
    section.locator(".filter-slice").select_option("label=negative")
    assert sorted(i for _, i in _visible_rows(section)) == ["ex-0005", "ex-0011", "ex-0017", "ex-0023",
                                                           "ex-0031", "ex-0047"]
    page.screenshot(path=str(report / "harmful.png"))


def test_search_finds_an_example_by_id(page):
    section = page.locator("section[data-suite=sentiment]")
    section.locator(".search").fill("ex-0017")
    assert sorted(_visible_rows(section)) == [("base", "ex-0017"), ("lora", "ex-0017")]
    section.locator(".filter-candidate").select_option("lora")
    assert _visible_rows(section) == [("lora", "ex-0017")]


def test_a_malicious_output_renders_as_text(page):
    section = page.locator("section[data-suite=sentiment]")
    section.locator(".search").fill("ex-0005")
    section.locator(".filter-candidate").select_option("lora")
    row = section.locator("tr.example:not(.hidden)")
    assert row.count() == 1
    assert "<img src=x onerror=alert(1)>" in row.inner_text()
    assert page.locator("img[src=x]").count() == 0 and page.locator("script:has-text('alert(2)')").count() == 0
    assert page.events == []  # no dialog, no failed image load


def test_the_diff_shows_the_words_that_changed(page):
    section = page.locator("section[data-suite=sentiment]")
    section.locator(".search").fill("ex-0040")
    section.locator(".filter-candidate").select_option("lora")
    row = section.locator("tr.example:not(.hidden)")
    assert row.locator("ins").all_inner_texts() == ["indeed"]
    assert row.locator("del").count() == 0


def test_flip_counts_against_baseline_and_base_are_shown(page):
    flips = page.locator("section[data-suite=sentiment] table.flips tbody tr")
    rows = [flips.nth(i).locator("td").all_inner_texts() for i in range(flips.count())]
    assert ["lora", "accuracy", "baseline", "regressed", "7", "0", "1", "52"] in rows
    assert any(r[:3] == ["lora", "accuracy", "base"] for r in rows)
