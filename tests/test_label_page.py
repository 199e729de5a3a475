"""The labelling page in a real browser: Debian's headless Chromium driven by Selenium, as a person uses
it (keys and clicks), against the real server on a free loopback port.

Needs ``chromium`` and ``chromium-driver`` (Debian) and ``selenium`` (the test extra); .ci/run installs
them. Without them the test is skipped, except under CI, where it fails: there it must run.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import json
import os
import shutil
import threading
import time

import pytest

from stochreg.label.server import start_server
from stochreg.label.store import LabelStore
from test_label import picture

DRIVER = shutil.which("chromedriver")
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


def browser():
    if not (DRIVER and BROWSER):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver must be installed for CI (.ci/run installs them)")
        pytest.skip("needs Debian's chromium and chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,800"):
        options.add_argument(argument)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)


def wait_for(condition, seconds=10.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the page did not get there in time")


@contextlib.contextmanager
def page_open(store: LabelStore):
    """The page of ``store`` served on a free loopback port and opened in headless Chromium."""
    server, url = start_server(store)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        driver = browser()
        try:
            driver.get(url)
            yield driver
        finally:
            driver.quit()
    finally:
        server.shutdown()


def shown_file(driver) -> str:
    """The file name under the picture the page shows (empty before the first one)."""
    from selenium.webdriver.common.by import By
    return driver.find_element(By.ID, "file").text


def test_labelling_by_key_and_click_with_an_undo_moves_the_files_and_writes_each_answer(tmp_path):
    root = tmp_path / "photos"
    for name, seed in (("cat", 1), ("dog", 2)):
        picture(root / "labelled" / name / f"{name}.png", seed, size=(96, 80))
    files = [picture(root / "unlabelled" / f"u{k}.png", 10 + k, size=(96, 80)) for k in range(6)]
    suggestions = tmp_path / "suggestions.csv"
    with open(suggestions, "w", newline="") as f:   # a run's list: u4 first, the model guessing dog
        csv.writer(f).writerows([["path", "guess", "confidence", "reason"],
                                 [str(files[4]), "dog", "0.5200", "unsure between dog and cat (52% / 48%)"]])
    with page_open(LabelStore(root, suggestions)) as driver:
        from selenium.webdriver.common.by import By
        shown = functools.partial(shown_file, driver)
        assert wait_for(shown) == "unlabelled/u4.png"
        assert "the model's guess: dog (52%)" in driver.find_element(By.ID, "caption").text
        assert driver.find_element(By.CSS_SELECTOR, "button.selected").get_attribute("data-answer") == "dog"
        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys("\n")                                  # u4: the guess, dog
        wait_for(lambda: shown() == "unlabelled/u0.png")
        body.send_keys("1")                                   # u0: cat
        wait_for(lambda: shown() == "unlabelled/u1.png")
        body.send_keys("x")                                   # u1: none of these
        wait_for(lambda: shown() == "unlabelled/u2.png")
        driver.find_element(By.CSS_SELECTOR, "button[data-answer='dog']").click()   # u2: dog, by click
        wait_for(lambda: shown() == "unlabelled/u3.png")
        body.send_keys("z")                                   # undo u2
        wait_for(lambda: shown() == "unlabelled/u2.png")
        lines = wait_for(lambda: [json.loads(line) for line in (root / "labels.jsonl").read_text().splitlines()]
                         if len((root / "labels.jsonl").read_text().splitlines()) == 5 else None)
        timings = driver.execute_script("return window.stochregTimings")
        if os.environ.get("STOCHREG_UPDATE_SCREENSHOTS"):
            driver.save_screenshot(os.environ["STOCHREG_UPDATE_SCREENSHOTS"])
    assert [(line["file"], line.get("answer"), line.get("undo")) for line in lines] == [
        ("unlabelled/u4.png", "dog", None), ("unlabelled/u0.png", "cat", None), ("unlabelled/u1.png", "none", None),
        ("unlabelled/u2.png", "dog", None), ("unlabelled/u2.png", None, 4)]
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png")) == [
        "labelled/cat/cat.png", "labelled/cat/u0.png", "labelled/dog/dog.png", "labelled/dog/u4.png",
        "out-of-class/u1.png", "unlabelled/u2.png", "unlabelled/u3.png", "unlabelled/u5.png"]
    assert len(timings) >= 4 and all(t >= 0 for t in timings)   # key to next image drawn, per answer
    print("milliseconds from a key to the next image:", [round(t, 1) for t in timings])


def test_classes_named_by_digits_are_answered_by_their_own_digit(tmp_path):
    root = tmp_path / "digits"
    for name in "012":
        picture(root / "labelled" / name / f"{name}.png", int(name), size=(28, 28), mode="L")
    for k in range(3):
        picture(root / "unlabelled" / f"u{k}.png", 20 + k, size=(28, 28), mode="L")
    with page_open(LabelStore(root)) as driver:
        from selenium.webdriver.common.by import By
        shown = functools.partial(shown_file, driver)
        assert wait_for(shown) == "unlabelled/u0.png"
        keys = [(button.find_element(By.TAG_NAME, "kbd").text, button.get_attribute("data-answer"))
                for button in driver.find_elements(By.TAG_NAME, "button")[:3]]
        assert keys == [("0", "0"), ("1", "1"), ("2", "2")]
        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys("0")
        wait_for(lambda: shown() == "unlabelled/u1.png")
        body.send_keys("2")
        wait_for(lambda: (root / "labelled" / "2" / "u1.png").is_file())
    assert (root / "labelled" / "0" / "u0.png").is_file()
