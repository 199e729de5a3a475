"""One round of the labelling loop on a 60,000-image folder, timed as a person meets it: `stochreg suggest`
on the run's whole unlabelled pool, then the labelling page answering keys in headless Chromium (the time
from each key to the next image drawn, as the page itself measures it). The run is short (its accuracy
is not what is measured here); the folder is Fashion-MNIST written as PNG files.

    python benchmarks/label_loop_speed.py --answers 40 --screenshot docs/label-page.png
        # results/label-next/speed-<machine>.json

Needs Debian's chromium and chromium-driver, and selenium (the test extra).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE.parent / "runs" / "label-speed"


def timed(what, work):
    start = time.perf_counter()
    value = work()
    seconds = time.perf_counter() - start
    print(f"{what}: {seconds:.1f} s", flush=True)
    return value, seconds


def answer_by_keys(store, answers: int, screenshot: str | None) -> list[float]:
    """Opens ``store``'s page, presses Enter (the guess) or a class's digit ``answers`` times, waiting for each next
    image; returns the page's own timings (milliseconds from each key to the next image drawn)."""
    from selenium.webdriver.common.by import By
    sys.path.insert(0, str(HERE.parent / "tests"))
    from test_label_page import page_open, wait_for

    with page_open(store) as driver:
        wait_for(lambda: driver.find_element(By.ID, "file").text, 30)
        body = driver.find_element(By.TAG_NAME, "body")
        if screenshot:
            wait_for(lambda: driver.execute_script("return document.getElementById('picture').complete"))
            driver.save_screenshot(screenshot)
        for k in range(answers):
            before = driver.find_element(By.ID, "file").text
            body.send_keys("\n" if k % 3 else str(1 + k % 9))
            wait_for(lambda: driver.find_element(By.ID, "file").text != before, 30)
            wait_for(lambda: len(driver.execute_script("return window.stochregTimings")) > k, 30)
        return driver.execute_script("return window.stochregTimings")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--answers", type=int, default=40, help="keys pressed on the page")
    parser.add_argument("--n", type=int, default=100, help="suggestions asked for")
    parser.add_argument("--iters", type=int, default=50, help="training steps of the (short) run")
    parser.add_argument("--screenshot", help="a PNG of the page as it opens")
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args(argv)

    import torch
    from stochreg.cli import main as stochreg_main
    from stochreg.data.write_folder import write_dataset_folder
    from stochreg.label.store import LabelStore
    from stochreg.runs.suggest import suggest, suggestions_path
    from stochreg.runtime.machine import machine_description, source_commit

    folder, run = WORK / f"{args.dataset}-folder", WORK / f"{args.dataset}-run"
    timed("folder written", lambda: write_dataset_folder(args.dataset, folder, 100, 0, args.data_dir,
                                                         log=lambda line: None))
    pool = sum(1 for _ in (folder / "unlabelled").iterdir())
    if not (run / "results.json").exists():
        timed("short run", lambda: stochreg_main(["train", "--data", str(folder), "--out", str(run), "--overwrite",
                                                  "--iters", str(args.iters), "--no-progress"]))
    rows, suggest_seconds = timed(f"suggest over {pool} unlabelled images",
                                  lambda: suggest(run, n=args.n))
    store, open_seconds = timed("page's folder listed", lambda: LabelStore(folder, suggestions_path(run)))
    timings = answer_by_keys(store, args.answers, args.screenshot)
    ordered = sorted(timings)
    report = {"dataset": args.dataset, "unlabelled_images": pool, "suggestions": len(rows),
              "suggest_seconds": round(suggest_seconds, 2), "page_listing_seconds": round(open_seconds, 2),
              "key_to_image_ms": {"median": round(statistics.median(ordered), 1),
                                  "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
                                  "max": round(ordered[-1], 1), "answers": len(ordered)},
              "load_average_1min": round(os.getloadavg()[0], 2),
              "command": "python benchmarks/label_loop_speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "commit": source_commit(), "machine": machine_description(torch.device("cpu"))}
    out = HERE / "results" / "label-next" / f"speed-{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
