"""``stochreg label``'s server without a browser: what each answer does to the folder, labels.jsonl, and
the requests it refuses (a wrong token or host, a path out of the unlabelled folder, a class name that is
not one folder's name, a second answer to an image another page answered)."""
from __future__ import annotations

import csv
import json
import threading

import numpy as np
import pytest
from PIL import Image

from stochreg.cli import main
from stochreg.label.server import create_app
from stochreg.label.store import LabelStore

TOKEN = "t0ken-for-tests"


def picture(path, seed=0, mode="RGB", size=(24, 20)):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    picture(root / "labelled" / "cat" / "c.png", 1)
    picture(root / "labelled" / "dog" / "d.png", 2)
    picture(root / "labelled" / "dog" / "u0.png", 3)   # the name an unlabelled image has too
    for k in range(4):
        picture(root / "unlabelled" / ("sub" if k % 2 else "") / f"u{k}.png", 10 + k)
    return root


def client_for(root, suggestions=None, port=None):
    app = create_app(LabelStore(root, suggestions), TOKEN)
    app.config["PORT"] = port
    client = app.test_client()
    client.environ_base["HTTP_X_TOKEN"] = TOKEN
    return client


def log_lines(root):
    return [json.loads(line) for line in (root / "labels.jsonl").read_text().splitlines()]


def test_an_answer_moves_the_file_into_its_class_and_is_appended_to_labels_jsonl(folder):
    client = client_for(folder)
    state = client.get("/api/state").get_json()
    assert state == {"folder": "photos", "classes": ["cat", "dog"], "left": 4, "suggested": 0}
    first = client.post("/api/answer", json={"file": "unlabelled/u0.png", "answer": "dog"})
    assert first.status_code == 200
    assert first.get_json()["moved_to"] == "labelled/dog/u0-2.png"   # the name was taken: nothing overwritten
    assert (folder / "labelled" / "dog" / "u0.png").is_file() and not (folder / "unlabelled" / "u0.png").exists()
    client.post("/api/answer", json={"file": "unlabelled/sub/u1.png", "answer": "none"})
    assert (folder / "out-of-class" / "u1.png").is_file()
    client.post("/api/answer", json={"file": "unlabelled/u2.png", "answer": "skip"})
    assert (folder / "unlabelled" / "u2.png").is_file()
    assert [(line["id"], line["file"], line["answer"]) for line in log_lines(folder)] == [
        (1, "unlabelled/u0.png", "dog"), (2, "unlabelled/sub/u1.png", "none"), (3, "unlabelled/u2.png", "skip")]
    queue = client.get("/api/queue?start=0&count=10").get_json()
    assert [item["file"] for item in queue["items"]] == ["unlabelled/sub/u3.png", "unlabelled/u2.png"]  # skipped last
    assert client.get("/api/state").get_json()["left"] == 2


def test_undo_puts_the_image_back_once_and_is_a_line_of_its_own(folder):
    client = client_for(folder)
    client.post("/api/answer", json={"file": "unlabelled/u0.png", "answer": "cat"})
    undo = client.post("/api/undo", json={"id": 1})
    assert undo.status_code == 200 and undo.get_json()["undo"] == 1
    assert (folder / "unlabelled" / "u0.png").is_file() and not (folder / "labelled" / "cat" / "u0.png").exists()
    again = client.post("/api/undo", json={"id": 1})
    assert again.status_code == 409 and "already undone" in again.get_json()["error"]
    assert client.post("/api/undo", json={"id": 7}).status_code == 404
    assert [line.get("undo") for line in log_lines(folder)] == [None, 1]


def test_a_second_answer_to_an_answered_image_is_refused_and_names_the_first(folder):
    first, second = client_for(folder), client_for(folder)   # two pages (or two processes) on one folder
    assert first.post("/api/answer", json={"file": "unlabelled/u0.png", "answer": "cat"}).status_code == 200
    late = second.post("/api/answer", json={"file": "unlabelled/u0.png", "answer": "dog"})
    assert late.status_code == 409
    assert "answered 'cat'" in late.get_json()["error"] and "another page" in late.get_json()["error"]


def test_answers_from_many_threads_at_once_are_each_kept_once(folder):
    for k in range(4, 24):
        picture(folder / "unlabelled" / f"u{k}.png", k)
    store = LabelStore(folder)
    files = [item.file for item in store.queue]
    outcomes = []

    def label_all(cls):
        for file in files:
            try:
                store.answer(file, cls)
                outcomes.append(file)
            except Exception as exc:   # the refusal of an image the other thread took
                assert "another page answered it" in str(exc)

    threads = [threading.Thread(target=label_all, args=(cls,)) for cls in ("cat", "dog")]
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]
    lines = log_lines(folder)
    assert sorted(outcomes) == sorted(files) and len(lines) == len(files)
    assert sorted(line["id"] for line in lines) == list(range(1, len(files) + 1))
    moved = sorted((folder / "labelled").rglob("u*.png"))
    assert len(moved) == len(files) + 1 and not list((folder / "unlabelled").rglob("*.png"))


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".hidden", "", " padded", "tab\there", "x" * 81])
def test_class_names_that_are_not_one_folder_are_refused(folder, name):
    response = client_for(folder).post("/api/answer", json={"file": "unlabelled/u0.png", "answer": name,
                                                            "new_class": True})
    assert response.status_code == 400
    assert (folder / "unlabelled" / "u0.png").is_file() and not (folder / "labelled" / "escape").exists()


def test_a_new_class_is_made_only_when_asked_and_never_as_a_case_twin(folder):
    client = client_for(folder)
    typo = client.post("/api/answer", json={"file": "unlabelled/u0.png", "answer": "cta"})
    assert typo.status_code == 400 and "add it as a new class" in typo.get_json()["error"]
    twin = client.post("/api/answer", json={"file": "unlabelled/u0.png", "answer": "Cat", "new_class": True})
    assert twin.status_code == 400 and "only in case" in twin.get_json()["error"]
    owl = client.post("/api/answer", json={"file": "unlabelled/u0.png", "answer": "owl", "new_class": True})
    assert owl.status_code == 200 and (folder / "labelled" / "owl" / "u0.png").is_file()
    assert client.get("/api/state").get_json()["classes"] == ["cat", "dog", "owl"]


@pytest.mark.parametrize("file", ["../labelled/cat/c.png", "unlabelled/../labelled/cat/c.png", "labelled/cat/c.png",
                                  "/etc/passwd", "unlabelled/../../photos/labelled/dog/d.png", "unlabelled",
                                  "unlabelled/%2e%2e/labelled/cat/c.png"])
def test_paths_outside_the_unlabelled_folder_are_refused(folder, file):
    client = client_for(folder)
    assert client.get("/image", query_string={"file": file}).status_code == 404
    assert client.post("/api/answer", json={"file": file, "answer": "cat"}).status_code in (404, 409)
    assert (folder / "labelled" / "cat" / "c.png").is_file() and not (folder / "labels.jsonl").read_text()


def test_a_wrong_or_missing_token_or_a_foreign_host_is_refused(folder):
    client = client_for(folder, port=8123)
    ok = client.get("/api/state", headers={"Host": "127.0.0.1:8123"})
    assert ok.status_code == 200
    for headers in ({"Host": "127.0.0.1:8123", "X-Token": "wrong"}, {"Host": "127.0.0.1:8123", "X-Token": ""}):
        refused = client.get("/api/state", headers=headers)
        assert refused.status_code == 403 and "token" in refused.get_json()["error"]
    assert client.get(f"/?token={TOKEN}", headers={"Host": "127.0.0.1:8123", "X-Token": ""}).status_code == 200
    for host in ("attacker.example:8123", "127.0.0.1:9999"):
        assert client.get("/api/state", headers={"Host": host}).status_code == 403
    assert client.post("/api/answer", headers={"Host": "127.0.0.1:8123", "X-Token": "wrong"},
                       json={"file": "unlabelled/u0.png", "answer": "cat"}).status_code == 403
    assert (folder / "unlabelled" / "u0.png").is_file()


def test_images_a_browser_cannot_draw_are_sent_as_png_and_unreadable_ones_say_why(folder):
    picture(folder / "unlabelled" / "scan.tif", 5)
    (folder / "unlabelled" / "broken.tif").write_bytes(b"II*\x00 not really a tiff")
    client = client_for(folder)
    png = client.get("/image", query_string={"file": "unlabelled/u0.png"})
    assert png.status_code == 200 and png.mimetype == "image/png"
    tif = client.get("/image", query_string={"file": "unlabelled/scan.tif"})
    assert tif.status_code == 200 and tif.mimetype == "image/png" and tif.data[:8] == b"\x89PNG\r\n\x1a\n"
    broken = client.get("/image", query_string={"file": "unlabelled/broken.tif"})
    assert broken.status_code == 415 and "broken.tif" in broken.get_json()["error"]


def test_a_runs_suggestions_come_first_with_their_guesses_even_after_the_folder_moved(folder, tmp_path):
    suggestions = tmp_path / "suggestions.csv"
    with open(suggestions, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "guess", "confidence", "reason"])
        writer.writerow(["elsewhere/photos/unlabelled/sub/u3.png", "dog", "0.5500", "unsure between dog and cat"])
        writer.writerow([str(folder / "unlabelled" / "u2.png"), "cat", "0.6000", "unsure between cat and dog"])
        writer.writerow([str(folder / "unlabelled" / "gone.png"), "cat", "0.9000", "no longer there"])
    client = client_for(folder, suggestions)
    items = client.get("/api/queue?count=3").get_json()["items"]
    assert [(item["file"], item["guess"]) for item in items] == [
        ("unlabelled/sub/u3.png", "dog"), ("unlabelled/u2.png", "cat"), ("unlabelled/sub/u1.png", None)]
    assert client.get("/api/state").get_json()["suggested"] == 2


def test_the_command_refuses_a_folder_without_unlabelled_images(tmp_path, capsys):
    picture(tmp_path / "done" / "labelled" / "cat" / "c.png")
    assert main(["label", str(tmp_path / "done")]) != 0
    assert "has no unlabelled/ folder" in capsys.readouterr().err


def test_a_runs_outliers_come_first_with_no_class_preselected(folder, tmp_path):
    outliers = tmp_path / "outliers.csv"
    with open(outliers, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "out_of_class_score", "out_of_class", "nearest_labelled_class", "guess", "confidence"])
        writer.writerow([str(folder / "unlabelled" / "u2.png"), "0.4100", "yes", "dog", "cat", "0.9100"])
    items = client_for(folder, outliers).get("/api/queue?count=2").get_json()["items"]
    assert items[0] == {"file": "unlabelled/u2.png", "guess": None, "confidence": 0.91,
                        "reason": "out-of-class score 0.41: its nearest labelled image is a dog, the model guesses cat"}


def test_outliers_need_a_run_that_has_them(folder, tmp_path, capsys):
    assert main(["label", str(folder), "--outliers"]) != 0
    assert "give the run with --run RUN" in capsys.readouterr().err
    (tmp_path / "old-run").mkdir()
    assert main(["label", str(folder), "--outliers", "--run", str(tmp_path / "old-run")]) != 0
    assert "has no outliers.csv" in capsys.readouterr().err
