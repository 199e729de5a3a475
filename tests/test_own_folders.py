"""The layout a person already has: ROOT/labelled/CLASS, optional ROOT/unlabelled (any depth) and
optional ROOT/test/CLASS, with images of mixed sizes, formats and kinds, phone photos turned by
their EXIF orientation, no test folder at all (no test estimate, or --holdout K)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stochreg.cli import main
from stochreg.data import load_dataset
from stochreg.errors import DataError
from stochreg.data.images import read_image
from test_user_data import CLASSES, TRAIN, picture


def write_photos(root, per_class=5, nested_unlabelled=4, sizes=((16, 16), (20, 14), (16, 16))):
    """root/labelled/CLASS/* in PNG, JPEG, WebP and BMP of mixed sizes; root/unlabelled/a/b/*."""
    formats = (".png", ".jpg", ".webp", ".bmp")
    for k, name in enumerate(CLASSES):
        (root / "labelled" / name).mkdir(parents=True)
        for i in range(per_class):
            picture(k, 10 * k + i, size=sizes[i % len(sizes)]).save(root / "labelled" / name / f"{i}{formats[i % 4]}")
    deep = root / "unlabelled" / "2026" / "trip"
    deep.mkdir(parents=True)
    for i in range(nested_unlabelled):
        picture(i % 3, 100 + i).save(deep / f"u{i}.jpg")


@pytest.mark.end_to_end
def test_labelled_and_nested_unlabelled_without_a_test_folder(tmp_path, capsys):
    write_photos(tmp_path / "photos")
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "photos"), "--labels", "0", *TRAIN, "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "no test estimate" in out
    results = json.loads((run / "results.json").read_text())
    assert results["test_error"] is None and results["labels"] == 15
    summary = (run / "summary.md").read_text()
    assert "No test estimate" in summary
    # the transform and net are given here; the method and the graph weight are chosen
    recipe_row = next(line for line in summary.splitlines() if line.startswith("| chosen from the data |"))
    assert "| method | fixmatch: lambda_u=" in summary       # the method's one term, named once
    assert "method fixmatch: colour images that are not digits" in recipe_row and "; lambda_graph " in recipe_row
    (run / "checkpoint.pt").unlink()                              # as if killed after its last checkpoint
    (run / "results.json").unlink()
    assert main(["train", "--resume", str(run)]) == 0            # the resumed run still says why
    assert recipe_row in (run / "summary.md").read_text().splitlines()
    capsys.readouterr()
    data = load_dataset(f"folder:{tmp_path / 'photos'}", log=lambda m: None)
    assert len(data.train_labels) == 15 + 4 and int((data.train_labels == -1).sum()) == 4
    assert data.image_shape == (3, 16, 16) and len(data.test_labels) == 0
    assert main(["predict", str(run), str(tmp_path / "photos" / "unlabelled")]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4
    assert main(["runs", str(tmp_path)]) == 0 and "no test set" in capsys.readouterr().out
    assert main(["eval", str(run)]) == 2 and "has no test images" in capsys.readouterr().err
    # more labelled photos later: the run scored on them, as predict's classes say
    more = tmp_path / "more"
    for k, name in enumerate(CLASSES[:2]):
        (more / name).mkdir(parents=True)
        for i in range(3):
            picture(k, 700 + i, size=(20, 14)).save(more / name / f"{i}.png")
    assert main(["eval", str(run), "--on", str(more), "--confusions", "2"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["split"] == "folder" and report["images"] == 6 and "6 of 6 images resized" in captured.err
    assert main(["predict", str(run), str(more)]) == 0
    predicted = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert report["errors"] == sum(Path(path).parent.name != name for path, name, _ in predicted)
    assert len(report["confusions"]) <= 2
    (more / "ferret").mkdir()
    picture(0, 800).save(more / "ferret" / "0.png")
    assert main(["eval", str(run), "--on", str(more)]) == 2
    assert "ferret is not a class of the run (its classes: cat, dog, owl)" in capsys.readouterr().err


@pytest.mark.end_to_end
def test_holdout_gives_a_test_estimate_and_is_refused_when_too_few_remain(tmp_path, capsys):
    write_photos(tmp_path / "photos")
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "photos"), "--labels", "0", "--holdout", "2", *TRAIN,
                 "--out", str(run)]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["labels"] == 3 * 3 and 0 <= results["test_error"] <= 1   # 5 per class, 2 kept aside
    # the summary calls the classes by their folder names, not by their indices
    row = next(line for line in (run / "summary.md").read_text().splitlines() if "most frequent confusions" in line)
    listed = row.split("|")[2].strip()
    pairs = re.findall(r"(\w+) taken for (\w+) \((\d+)\)", listed)
    assert (listed == "none") == (results["test_errors"] == 0), row
    assert all(t in CLASSES and p in CLASSES for t, p, _ in pairs) and listed in ("none", ", ".join(
        f"{t} taken for {p} ({n})" for t, p, n in pairs)), row
    capsys.readouterr()
    assert main(["train", "--data", str(tmp_path / "photos"), "--labels", "0", "--holdout", "4", *TRAIN,
                 "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--holdout 4 leaves class 'cat' fewer than 2 labelled images to train on" in err[0]


def test_grayscale_among_colour_is_read_as_colour(tmp_path):
    write_photos(tmp_path / "photos")
    picture(0, 7, mode="L").save(tmp_path / "photos" / "labelled" / "cat" / "gray.png")
    notes = []
    data = load_dataset(f"folder:{tmp_path / 'photos'}", log=notes.append)
    assert data.image_shape[0] == 3 and any("1 grayscale image among" in n for n in notes)


def test_sixteen_bit_scans_are_grayscale_read_by_their_full_range_not_clipped_white(tmp_path):
    """16-bit PNG and TIFF files (either byte order) and a float TIFF, as scanners and microscopes
    write them: one channel, 0..65535 (or 0..1) spread over 0..255 as the 8-bit image would be."""
    ramp = np.linspace(0, 65535, 16 * 16).reshape(16, 16).astype(np.uint16)
    scans = tmp_path / "scans" / "labelled"
    for k, name in enumerate(CLASSES):
        (scans / name).mkdir(parents=True)
        Image.fromarray(ramp).save(scans / name / "a.png")
        Image.fromarray(ramp).save(scans / name / "b.tif")
        Image.fromarray(ramp.byteswap().view(">u2")).save(scans / name / "c.tif")   # mode I;16B
        Image.fromarray(ramp.astype(np.float32) / 65535).save(scans / name / "d.tif")
    assert {Image.open(f).mode for f in scans.rglob("*.*")} == {"I;16", "I;16B", "F"}
    data = load_dataset(f"folder:{tmp_path / 'scans'}")
    assert data.image_shape == (1, 16, 16)
    expected = np.rint(ramp / 257).astype(np.uint8)
    for image in data.train_images:
        assert np.abs(image[0].numpy().astype(int) - expected).max() <= 1


def test_hidden_files_and_folders_that_tools_leave_behind_are_left_out(tmp_path):
    """A folder copied from a Mac holds ``._NAME.jpg`` resource forks (no images) beside every photo,
    a Jupyter notebook's ``.ipynb_checkpoints`` holds copies of images, a zip made on a Mac holds
    ``__MACOSX``: none is a class or an image."""
    write_photos(tmp_path / "photos")
    labelled = tmp_path / "photos" / "labelled"
    for name in CLASSES:
        (labelled / name / "._0.png").write_bytes(b"\x00\x05\x16\x07" + bytes(60))   # AppleDouble header
    for junk in (".ipynb_checkpoints", "__MACOSX"):
        (labelled / junk).mkdir()
        picture(0, 1).save(labelled / junk / "0-checkpoint.png")
    (tmp_path / "photos" / "unlabelled" / ".thumbnails").mkdir()
    picture(0, 2, size=(4, 4)).save(tmp_path / "photos" / "unlabelled" / ".thumbnails" / "t.png")
    data = load_dataset(f"folder:{tmp_path / 'photos'}")
    assert data.class_names == list(CLASSES)
    assert len(data.train_labels) == 5 * len(CLASSES) + 4     # write_photos' labelled and unlabelled images


def test_a_cut_out_product_shot_reads_as_on_white_whatever_its_file_stores_under_the_transparency(tmp_path):
    """The same cut-out object saved by two tools: one stores black under its transparent pixels, the
    other the background it was cut from. Both read as a viewer shows them, on white, and alike."""
    shot = np.zeros((8, 8, 4), dtype=np.uint8)
    shot[2:6, 2:6] = (200, 10, 10, 255)                          # an opaque red object
    stale = shot.copy()
    stale[shot[..., 3] == 0] = (30, 140, 60, 0)                  # a green backdrop, transparent
    Image.fromarray(shot).save(tmp_path / "black.png")
    Image.fromarray(stale).save(tmp_path / "stale.png")
    Image.fromarray(shot).convert("LA").save(tmp_path / "gray.png")
    black, _ = read_image(tmp_path / "black.png", (3, 8, 8))
    assert (black == read_image(tmp_path / "stale.png", (3, 8, 8))[0]).all()
    assert black[:, 0, 0].tolist() == [255, 255, 255] and black[:, 3, 3].tolist() == [200, 10, 10]
    assert read_image(tmp_path / "gray.png", (1, 8, 8))[0][0, 0, 0] == 255


@pytest.mark.end_to_end
def test_test_images_that_are_training_images_and_images_in_two_classes_get_a_note(tmp_path):
    import shutil
    write_photos(tmp_path / "photos")
    labelled, test = tmp_path / "photos" / "labelled", tmp_path / "photos" / "test"
    for name in CLASSES:
        (test / name).mkdir(parents=True)
        picture(CLASSES.index(name), 500).save(test / name / "new.png")
    shutil.copy(labelled / "cat" / "0.png", test / "cat" / "copy.png")           # a copy into the test set
    picture(0, 0).convert("RGB").save(test / "dog" / "resaved.bmp")             # the same photo saved again
    shutil.copy(labelled / "owl" / "0.png", labelled / "dog" / "also-owl.png")   # one image in two classes
    notes = []
    load_dataset(f"folder:{tmp_path / 'photos'}", log=notes.append)
    leak = [n for n in notes if "test images that are also training images" in n]
    assert len(leak) == 1 and "training images: 2 of 5 (" in leak[0]
    both = [n for n in notes if "one label of each pair is wrong" in n]
    assert len(both) == 1 and "also-owl.png in dog" in both[0] and "0.png in owl" in both[0]
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "photos"), *TRAIN, "--out", str(run)]) == 0
    kept = json.loads((run / "results.json").read_text())["notes"]               # beside the test error they concern
    assert any(n.startswith("test images that are also training images: 2 of 5") for n in kept)
    assert "| notes | " in (run / "summary.md").read_text()
    assert all(not n.startswith("label propagation over") for n in kept)        # notes only, not timings
    clean = []
    for extra in (test / "cat" / "copy.png", test / "dog" / "resaved.bmp", labelled / "dog" / "also-owl.png"):
        extra.unlink()
    load_dataset(f"folder:{tmp_path / 'photos'}", log=clean.append)
    assert not any("same pixels" in n for n in clean)


def test_iphone_heic_browser_jfif_and_scanner_pgm_files_are_images(tmp_path):
    """Formats a folder of one's own photos holds besides PNG and JPEG: none may be left out unsaid."""
    pytest.importorskip("pillow_heif").register_heif_opener()     # to write the HEIC file
    write_photos(tmp_path / "photos")
    for k, (name, suffix) in enumerate(zip(CLASSES, (".heic", ".jfif", ".pgm"))):
        picture(k, 300).convert("L" if suffix == ".pgm" else "RGB").save(
            tmp_path / "photos" / "labelled" / name / f"extra{suffix}", format={".jfif": "JPEG"}.get(suffix))
    data = load_dataset(f"folder:{tmp_path / 'photos'}")
    assert len(data.train_labels) == 6 * len(CLASSES) + 4
    # stochreg registers the plugin itself: in a fresh process, as a user's would be
    import subprocess
    import sys
    band = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                           "from stochreg.data.images import read_image; "
                           "a, _ = read_image(Path(sys.argv[1]), (3, 16, 16)); print(a[:, 2:5].mean(), a[:, 8:].mean())",
                           str(tmp_path / "photos" / "labelled" / "cat" / "extra.heic")],
                          capture_output=True, text=True, check=True).stdout.split()
    assert float(band[0]) > 200 and float(band[1]) < 90       # the cat's bright band, lossy but in place


def test_files_that_are_not_images_are_left_out_with_a_note_counting_them(tmp_path):
    write_photos(tmp_path / "photos")
    for name in ("IMG_1.CR2", "IMG_2.CR2", "IMG_3.nef"):
        (tmp_path / "photos" / "labelled" / "cat" / name).write_bytes(b"raw")
    (tmp_path / "photos" / "unlabelled" / "README").write_text("photos from the trip")
    notes = []
    data = load_dataset(f"folder:{tmp_path / 'photos'}", log=notes.append)
    assert len(data.train_labels) == 5 * len(CLASSES) + 4
    assert "note: 4 files that are not images by their name were left out (2 .cr2, 1 .nef, 1 without a suffix)" \
        in "\n".join(notes)
    quiet = []
    write_photos(tmp_path / "clean")
    load_dataset(f"folder:{tmp_path / 'clean'}", log=quiet.append)
    assert not any("left out" in n for n in quiet)


def test_a_heic_file_without_its_plugin_says_how_to_install_it(tmp_path, monkeypatch):
    import sys
    import stochreg.data.images as images
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    monkeypatch.setitem(sys.modules, "pillow_heif", None)               # not installed
    images._register_heif_opener.cache_clear()
    with pytest.raises(DataError, match=r"IMG_0001\.HEIC: HEIC/HEIF files \(iPhone photos\) need pillow-heif: "
                                        r"pip install 'stochreg\[heic\]'"):
        read_image(tmp_path / "IMG_0001.HEIC", (3, 16, 16))
    images._register_heif_opener.cache_clear()


def test_a_float_image_outside_the_pixel_range_names_its_file(tmp_path):
    Image.fromarray(np.full((8, 8), 300.0, dtype=np.float32)).save(tmp_path / "depth.tif")
    with pytest.raises(DataError, match=r"depth\.tif: pixel values outside 0\.\.255"):
        read_image(tmp_path / "depth.tif", (1, 8, 8))


def test_exif_orientation_turns_a_phone_photo_upright(tmp_path):
    stored = np.zeros((8, 16, 3), dtype=np.uint8)          # 16 wide, 8 high, as the sensor stored it
    stored[:, :4] = 255                                     # a bright left edge
    exif = Image.Exif()
    exif[0x0112] = 6                                        # "rotate 90 degrees clockwise to view"
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    array, _ = read_image(tmp_path / "phone.jpg", (3, 16, 8))
    assert array.shape == (3, 16, 8)                        # shown 8 wide, 16 high
    assert array[:, :4].mean() > 200 and array[:, -4:].mean() < 50   # the left edge is now on top


def test_a_large_phone_photo_decodes_reduced_upright_and_as_a_full_decode_would(tmp_path):
    """A JPEG read for a model 8 times smaller decodes at a reduced size (the cost of a folder of phone
    photos); its pixels are a full decode's but along sharp edges, and EXIF still turns it upright."""
    from PIL import ImageOps
    y, x = np.mgrid[0:320, 0:640]
    stored = np.stack([x * 255 // 639, y * 255 // 319, (x + y) * 255 // 958], -1).astype(np.uint8)
    stored[:, :160] = 255                                   # a bright left quarter, as the sensor stored it
    exif = Image.Exif()
    exif[0x0112] = 6                                        # "rotate 90 degrees clockwise to view"
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    array, resized = read_image(tmp_path / "phone.jpg", (3, 80, 40))
    with Image.open(tmp_path / "phone.jpg") as image:
        full = np.asarray(ImageOps.exif_transpose(image).convert("RGB").resize((40, 80), Image.Resampling.BILINEAR))
    assert resized and array.shape == (3, 80, 40)           # shown 40 wide, 80 high
    assert array[:, :20].mean() > 200                       # the bright quarter is now on top
    difference = np.abs(array.astype(int) - full.transpose(2, 0, 1).astype(int))
    # two downscalings of one photo: alike but for a few pixels along the sharp edge
    assert difference.mean() < 1 and (difference > 3).mean() < 0.05, (difference.mean(), (difference > 3).mean())
    with Image.open(tmp_path / "phone.jpg") as image:
        image.draft("RGB", (80, 40))
        assert image.size[0] < 640                          # the decoder can reduce this file


def test_an_image_without_read_permission_is_one_clear_line(tmp_path, monkeypatch, capsys):
    """Checked by faking the operating system's answer: the tests run as root, who may read anything."""
    import PIL.Image
    write_photos(tmp_path / "photos")
    locked = tmp_path / "photos" / "labelled" / "dog" / "0.png"
    real_open = PIL.Image.open

    def open_(fp, *args, **kwargs):
        if str(fp) == str(locked):
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)
    monkeypatch.setattr(PIL.Image, "open", open_)
    with pytest.raises(DataError, match=r"cannot read image .*dog/0.png: permission denied"):
        load_dataset(f"folder:{tmp_path / 'photos'}", log=lambda m: None)


def test_images_too_many_for_memory_are_read_smaller_unless_a_size_is_given(tmp_path, monkeypatch):
    import stochreg.data.listing as folders
    write_photos(tmp_path / "photos")                        # 19 images of 3 x 16 x 16: 14,592 bytes
    monkeypatch.setattr(folders, "IN_MEMORY_BYTES", 19 * 3 * 8 * 8)
    notes = []
    data = load_dataset(f"folder:{tmp_path / 'photos'}", log=notes.append)
    assert data.image_shape == (3, 8, 8) and any("would take" in n and "--image-size" in n for n in notes)
    assert load_dataset(f"folder:{tmp_path / 'photos'}", image_size=12, log=notes.append).image_shape == (3, 12, 12)


def test_photos_larger_than_the_default_side_are_read_smaller_keeping_their_aspect(tmp_path):
    """Phone-sized photos would make steps of hundreds of GiB: without --image-size the longer side
    is read at DEFAULT_MAX_SIDE pixels, the aspect kept; an explicit size is used as given."""
    import stochreg.data.listing as folders
    from stochreg.config.settings import TrainConfig
    side = folders.DEFAULT_MAX_SIDE
    write_photos(tmp_path / "photos", sizes=((3 * side, 2 * side),))  # 288 wide, 192 high
    notes = []
    data = load_dataset(f"folder:{tmp_path / 'photos'}", log=notes.append)
    assert data.image_shape == (3, 2 * side // 3, side)              # 96 wide, 64 high
    assert any(f"images of {3 * side}x{2 * side} read at {side}x{2 * side // 3}" in n and "--image-size" in n
               for n in notes), notes
    # the nested unlabelled photos (16 x 16) are resized too, and nothing says they are "odd"
    assert not any("the most common size" in n for n in notes)
    assert load_dataset(f"folder:{tmp_path / 'photos'}", image_size=120, log=notes.append).image_shape == (3, 120, 120)
    assert f"at most {side} pixels" in TrainConfig.__dataclass_fields__["image_size"].metadata["help"]


def test_photos_at_or_under_the_default_side_keep_their_size(tmp_path):
    import stochreg.data.listing as folders
    write_photos(tmp_path / "photos", sizes=((folders.DEFAULT_MAX_SIDE, 40),))
    assert load_dataset(f"folder:{tmp_path / 'photos'}", log=lambda m: None).image_shape == (3, 40, folders.DEFAULT_MAX_SIDE)


@pytest.mark.end_to_end
def test_unbalanced_labelled_folders_say_so_and_name_the_balanced_label_count(tmp_path, capsys):
    write_photos(tmp_path / "photos")                       # 5 labelled images a class
    for i in range(5, 15):                                  # 15 cats against 5 dogs and 5 owls
        picture(0, 500 + i).save(tmp_path / "photos" / "labelled" / "cat" / f"{i}.png")
    assert main(["train", "--data", str(tmp_path / "photos"), *TRAIN, "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "note: the labelled classes are unbalanced (cat: 15 images, dog: 5)" in out
    assert "--labels 15 takes 5 of each" in out
    # that count gives a balanced split, which says nothing
    assert main(["train", "--data", str(tmp_path / "photos"), "--labels", "15", *TRAIN, "--out",
                 str(tmp_path / "balanced")]) == 0
    assert "labelled classes are unbalanced" not in capsys.readouterr().out


@pytest.mark.end_to_end
def test_a_folder_of_digits_gets_the_digit_recipe_when_it_says_so(tiny_data_dir, tmp_path, capsys):
    """Digits in a folder are the user's own images, read as such (mirrored views and all) unless
    --digits says what they are: then the recipe is the built-in digit datasets' one."""
    import yaml
    digits = load_dataset("mnist", tiny_data_dir, fetch_missing=False)
    for i, (image, label) in enumerate(zip(digits.train_images[:, 0].numpy(), digits.train_labels.tolist())):
        folder = tmp_path / "scans" / ("labelled" / Path(str(label)) if i < 40 else Path("unlabelled"))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.png")
    small = ["--iters", "2", "--batch-labelled", "10", "--batch-unlabelled", "4", "--eval-every", "0", "--no-progress"]
    chosen = {}
    for flag in ("--digits", "--no-digits"):
        run = tmp_path / flag.strip("-")
        assert main(["train", "--data", str(tmp_path / "scans"), flag, *small, "--out", str(run)]) == 0
        chosen[flag] = {**yaml.safe_load((run / "config.yaml").read_text()),
                        **json.loads((run / "results.json").read_text())}
    builtin = tmp_path / "builtin"
    assert main(["train", "--data-dir", str(tiny_data_dir), "--labels", "40", *small, "--out", str(builtin)]) == 0
    expected = {**yaml.safe_load((builtin / "config.yaml").read_text()),
                **json.loads((builtin / "results.json").read_text())}
    keys = ("method", "transform", "views", "net", "dropout", "graph_deskewed")
    assert {k: chosen["--digits"][k] for k in keys} == {k: expected[k] for k in keys}
    assert chosen["--digits"]["method"] == "ts-me-fixmatch" and chosen["--digits"]["transform"] == "digits"
    assert chosen["--no-digits"]["method"] == "fixmatch" and chosen["--no-digits"]["transform"] == "crop-flip"
    assert chosen["--digits"]["graph_deskewed"] and not chosen["--no-digits"]["graph_deskewed"]


def test_show_views_of_a_folder_follows_the_flags_training_takes(tmp_path, capsys):
    """What show-views draws for a folder is what `train --data` with the same flags trains on."""
    from test_user_view import png_size
    write_photos(tmp_path / "photos")
    dataset = f"folder:{tmp_path / 'photos'}"
    for flags, what in (([], "method fixmatch (crop-flip"), (["--no-flip"], "method fixmatch (crop,"),
                        (["--digits"], "method ts-me-fixmatch (digits")):
        assert main(["show-views", "--dataset", dataset, *flags, "--images", "2", "--out", str(tmp_path / "v.png")]) == 0
        assert what in capsys.readouterr().out
    assert main(["show-views", "--dataset", dataset, "--image-size", "12", "--views", "2", "--images", "2",
                 "--scale", "1", "--out", str(tmp_path / "small.png")]) == 0
    assert png_size(tmp_path / "small.png")[1] == 2 * (12 + 2) + 2         # two rows of 12-pixel images


def test_the_size_read_at_is_of_the_orientation_most_images_have(tmp_path):
    """Two landscape cameras and one portrait size: the portrait size is the single most common one,
    but most photos are landscape, so they are read landscape and the portrait ones are squeezed."""
    from collections import Counter
    from stochreg.data.listing import size_to_read
    # per class 2 portrait 14x20 photos and 3 landscape ones of 3 sizes; 4 square unlabelled ones
    write_photos(tmp_path / "photos", sizes=((14, 20), (14, 20), (20, 14), (22, 16), (24, 18)))
    notes = []
    data = load_dataset(f"folder:{tmp_path / 'photos'}", log=notes.append)
    assert data.image_shape[1:] in ((14, 20), (16, 22), (18, 24))             # (H, W): one of the landscape sizes
    assert any(n.startswith("note: 6 of the 19 images are portrait among landscape ones, the most common "
                            "orientation") for n in notes), notes
    # the rule itself: orientation first, then the size; a tie between orientations keeps the most common size's
    assert size_to_read(Counter({(3, 4): 5, (4, 3): 4, (8, 6): 3})) == ((4, 3), 4)
    assert size_to_read(Counter({(3, 4): 5, (4, 3): 5})) == ((3, 4), 5)
    assert size_to_read(Counter({(3, 4): 6, (4, 3): 3, (6, 8): 3})) == ((3, 4), 6)
    assert size_to_read(Counter({(5, 5): 4, (4, 3): 3, (3, 4): 3})) == ((5, 5), 4)


def test_portrait_photos_among_landscape_ones_get_a_note_on_their_squeeze(tmp_path):
    write_photos(tmp_path / "photos", sizes=((20, 14), (20, 14), (14, 20)))   # one labelled photo a class portrait
    notes = []
    data = load_dataset(f"folder:{tmp_path / 'photos'}", log=notes.append)
    assert data.image_shape == (3, 14, 20)
    assert any(n.startswith("note: 3 of the 19 images are portrait among landscape ones") for n in notes)
    squared = []
    load_dataset(f"folder:{tmp_path / 'photos'}", image_size=16, log=squared.append)
    assert not any("portrait" in n for n in squared)


@pytest.mark.end_to_end
def test_arrays_given_to_fit_get_the_repeated_image_notes_a_folder_gets(tmp_path, capsys):
    """stochreg.fit on arrays: a test image among the training images and one image labelled as two
    classes are said, naming the images by index and the classes by name, and kept with the results."""
    import stochreg
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 12, 12), dtype=np.uint8)
    labels = np.where(np.arange(40) < 12, np.arange(40) % 3, -1)
    images[7] = images[3]                                    # labelled 1 and 0: one label is wrong
    test_images, test_labels = rng.integers(0, 256, size=(6, 12, 12), dtype=np.uint8), np.arange(6) % 3
    test_images[4] = images[20]                              # an unlabelled training image, in the test set
    stochreg.fit((images, labels), test=(test_images, test_labels), class_names=["cat", "dog", "owl"],
                 out=tmp_path / "run", progress=False, iters=2, eval_every=0, batch_labelled=6, batch_unlabelled=4,
                 net="compact-small", transform="crop", lambda_graph=0)
    out = capsys.readouterr().out
    assert ("note: labelled images of two classes hold the same pixels (1 in all; training image 3 in cat, "
            "training image 7 in dog): one label of each pair is wrong") in out
    assert "test images that are also training images: 1 of 6 (the same pixels at the model's input size; " \
           "test image 4 and training image 20)" in out
    kept = json.loads((tmp_path / "run" / "results.json").read_text())["notes"]
    assert len(kept) == 2 and any("training image 3 in cat" in n for n in kept)
    from stochreg.data.repeats import repeated_array_notes
    unnamed = repeated_array_notes(images, labels.tolist(), test_images[:0], [], ["0", "1", "2"])
    assert unnamed and "training image 3 in class 0, training image 7 in class 1" in unnamed[0]
