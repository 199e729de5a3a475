"""Real images larger than the benchmarks': the ELPV reader, its offline and repository sources, a built-in
dataset written as a folder, networks that start from pretrained weights, and the recipe that uses them."""
from __future__ import annotations

import dataclasses
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stochreg.cli import main
from stochreg.config import TrainConfig, resolve_config
from stochreg.config.recipe import PRETRAINED_LR, PRETRAINED_NET, resolve_data_recipe
from stochreg.data import elpv, load_dataset
from stochreg.data import fetch as fetching
from stochreg.errors import UsageError
from stochreg.nets import build_net
from stochreg.pretrained import ScaledInput, load_pretrained, read_state_dict, start_from_weights

PROBABILITIES = [0.0, 0.0, 1 / 3, 0.0, 1.0, 0.0, 2 / 3, 0.0, 1.0, 0.0, 0.0, 1.0]


def write_elpv(folder: Path, side: int = 150) -> Path:
    """A small ELPV in its own layout: labels.csv lines 'images/cellN.png  p  type' and the PNG files."""
    (folder / "images").mkdir(parents=True)
    lines = []
    for i, p in enumerate(PROBABILITIES, start=1):
        pixels = np.full((side, side), 60 + 15 * i, dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "images" / f"cell{i:04d}.png")
        lines.append(f"images/cell{i:04d}.png  {p:.17g}  {'mono' if i % 2 else 'poly'}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


def quiet(message):
    pass


def test_elpv_reads_two_classes_with_a_fixed_stratified_test_quarter(tmp_path):
    write_elpv(tmp_path / "data" / "elpv")
    data = load_dataset("elpv", tmp_path / "data", fetch_missing=False)
    assert data.class_names == ["functional", "defective"]
    assert data.image_shape == (1, 128, 128)     # 150 px read as the own-images path reads them
    labels = elpv.binary_labels(np.array(PROBABILITIES))
    assert labels.tolist() == [0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1]
    # 8 functional and 4 defective: a quarter of each is the test set, the same at every call
    assert sorted(data.test_labels.tolist()) == [0, 0, 1] and len(data.train_labels) == 9
    assert elpv.held_out_indices(labels).tolist() == elpv.held_out_indices(labels).tolist()


def test_elpv_comes_offline_from_the_wheel_that_ships_it(tmp_path, monkeypatch, capsys):
    served = write_elpv(tmp_path / "served" / "elpv_dataset" / "data")
    wheel = tmp_path / "elpv_dataset-1.0.0.post1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as wz:
        for file in [served / "labels.csv", *sorted((served / "images").iterdir())]:
            wz.write(file, file.relative_to(tmp_path / "served").as_posix())
    monkeypatch.setattr(elpv, "pip_download", lambda requirement, folder: wheel)
    import hashlib    # the stand-in's labels, pinned in place of the real ones'
    pinned = {"labels.csv": hashlib.sha256((served / "labels.csv").read_bytes()).hexdigest()}
    monkeypatch.setitem(fetching.SOURCES, "elpv", dataclasses.replace(fetching.SOURCES["elpv"], content_sha256=pinned))
    assert main(["data", "fetch", "elpv", "--data-dir", str(tmp_path / "data"), "--offline"]) == 0
    assert "provisioning from the data files of the PyPI wheel elpv-dataset" in capsys.readouterr().out
    assert len(load_dataset("elpv", tmp_path / "data").train_labels) == 9


def test_elpv_comes_from_its_repository_archive(tmp_path, monkeypatch):
    from test_download import Mirror
    write_elpv(tmp_path / "elpv-dataset-master" / "data")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(tmp_path / "elpv-dataset-master", arcname="elpv-dataset-master")
    mirror = Mirror()
    try:
        mirror.files["master.tar.gz"] = buffer.getvalue()
        monkeypatch.setitem(fetching.SOURCES, "elpv", dataclasses.replace(fetching.SOURCES["elpv"],
                                                                           mirrors=(mirror.url,)))
        folder = fetching.fetch("elpv", tmp_path / "data", log=quiet)
    finally:
        mirror.server.shutdown()
    assert (folder / "labels.csv").is_file() and not (folder / "master.tar.gz").exists()
    assert len(load_dataset("elpv", tmp_path / "data").test_labels) == 3


def test_a_dataset_written_as_a_folder_trains_on_the_same_labelled_images(tmp_path):
    write_elpv(tmp_path / "data" / "elpv")
    root = tmp_path / "elpv4"
    assert main(["data", "folder", "elpv", str(root), "--labels", "4", "--seed", "1",
                 "--data-dir", str(tmp_path / "data")]) == 0
    labelled = {p.parent.name: 0 for p in (root / "labelled").rglob("*.png")}
    for p in (root / "labelled").rglob("*.png"):
        labelled[p.parent.name] += 1
    assert labelled == {"functional": 2, "defective": 2}
    assert len(list((root / "unlabelled").iterdir())) == 5 and len(list((root / "test").rglob("*.png"))) == 3
    with Image.open(next((root / "test").rglob("*.png"))) as image:
        assert image.size == (150, 150)    # the original files, copied
    folder = load_dataset(f"folder:{root}", log=quiet)
    built_in = load_dataset("elpv", tmp_path / "data", fetch_missing=False)
    def named(data):
        return sorted(data.class_names[k] for k in data.test_labels.tolist())
    assert named(folder) == named(built_in)


def tiny_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    body = model.body if isinstance(model, ScaledInput) else model
    return {k: torch.randn_like(v.float()).to(v.dtype) for k, v in body.state_dict().items()}


def test_weights_under_other_names_load_by_position_and_a_grayscale_stem_sums_the_colours(tmp_path):
    colour = build_net(PRETRAINED_NET, (3, 64, 64), 1000)
    state = tiny_state(colour)
    renamed = {f"_port.{i:03d}": v for i, v in enumerate(state.values())}   # another naming, the same order
    torch.save(renamed, tmp_path / "port.pth")
    gray = build_net(PRETRAINED_NET, (1, 64, 64), 2)
    loaded = load_pretrained(gray, read_state_dict(tmp_path / "port.pth"), "port.pth")
    assert loaded == len(state) - 2    # all but the classifier, new for 2 classes
    stem = gray.body.conv_stem.weight
    assert torch.allclose(stem, state["conv_stem.weight"].sum(1, keepdim=True))
    assert torch.equal(gray.body.blocks[0][0].conv_dw.weight, state["blocks.0.0.conv_dw.weight"])
    assert gray.body.classifier.weight.shape == (2, 1280)


def test_a_safetensors_file_loads_by_name_and_a_run_says_where_it_started(tmp_path):
    from safetensors.torch import save_file
    model = build_net(PRETRAINED_NET, (1, 64, 64), 2)
    state = tiny_state(model)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    fresh = build_net(PRETRAINED_NET, (1, 64, 64), 2)
    said = start_from_weights(fresh, PRETRAINED_NET, str(tmp_path / "w.safetensors"), tmp_path)
    assert said.endswith(f"({len(state)} tensors)")
    assert torch.equal(fresh.body.classifier.weight, state["classifier.weight"])


def test_weights_for_another_network_and_pickled_code_are_refused(tmp_path):
    model = build_net(PRETRAINED_NET, (1, 64, 64), 2)
    state = tiny_state(model)
    state["blocks.1.0.conv_pw.weight"] = torch.zeros(3, 3, 3)
    torch.save(state, tmp_path / "other.pth")
    with pytest.raises(UsageError, match=r"tensor blocks.1.0.conv_pw.weight has shape \(3, 3, 3\)"):
        load_pretrained(model, read_state_dict(tmp_path / "other.pth"), "other.pth")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "model.pth")   # a whole pickled module, not a state dict
    with pytest.raises(UsageError, match="would run code when loaded"):
        read_state_dict(tmp_path / "model.pth")
    with pytest.raises(UsageError, match="no such weights file"):
        resolve_config(overrides={"weights": str(tmp_path / "missing.pth")})


def test_timm_names_build_and_unknown_ones_say_so():
    net = build_net("timm:resnet10t", (1, 64, 64), 3)
    assert net(torch.zeros(2, 1, 64, 64)).shape == (2, 3)
    with pytest.raises(UsageError, match="timm has no model 'resnet_no_such'"):
        build_net("timm:resnet_no_such", (1, 64, 64), 3)


def test_photos_and_scans_fine_tune_imagenet_weights_and_take_the_unlabelled_prior():
    cfg, why = resolve_data_recipe(TrainConfig(), (1, 128, 128), is_digits=False)
    assert (cfg.method, cfg.net, cfg.weights, cfg.lr, cfg.class_prior) == (
        "supervised", PRETRAINED_NET, "auto", PRETRAINED_LR, "estimated")
    assert any(reason.startswith("class_prior estimated:") for reason in why)
    named, _ = resolve_data_recipe(TrainConfig(method="fixmatch"), (1, 128, 128), is_digits=False)
    assert (named.method, named.net, named.lr) == ("fixmatch", PRETRAINED_NET, PRETRAINED_LR)
    random_start, _ = resolve_data_recipe(TrainConfig(weights="none"), (1, 128, 128), is_digits=False)
    assert random_start.lr == 0.1
    for shape, digits in (((1, 28, 28), False), ((1, 28, 28), True), ((3, 32, 32), False), ((1, 96, 96), True)):
        other, _ = resolve_data_recipe(TrainConfig(), shape, is_digits=digits)
        assert other.net != PRETRAINED_NET and other.lr == 0.1 and other.class_prior == "labelled"


def test_a_model_that_answers_one_class_is_told_apart_from_one_that_learnt():
    from stochreg.runs.verdict import class_scores, nothing_learnt
    labels = np.array([0] * 69 + [1] * 31)
    constant = np.zeros(100, dtype=np.int64)
    warned = nothing_learnt(labels, constant, ["functional", "defective"], "test")
    assert len(warned) == 2 and "no better than answering functional" in warned[0]
    assert "answers functional for 100% of the test images, of which 69% are functional" in warned[1]
    learnt = labels.copy()
    learnt[:10] = 1    # 10 errors: 10% against the constant answer's 31%
    assert nothing_learnt(labels, learnt, ["functional", "defective"], "test") == []
    scores = class_scores(labels, learnt, 2)
    assert scores["recall"][1] == 1.0 and abs(scores["balanced_error"] - 10 / 69 / 2) < 1e-9


@pytest.mark.end_to_end
def test_a_run_moves_its_answers_to_the_unlabelled_class_prior_and_says_what_it_learnt(tiny_data_dir, tmp_path):
    from stochreg.train import train
    from test_time_budget import TINY, quiet
    lines = []
    cfg = resolve_config(overrides={**TINY, "data_dir": str(tiny_data_dir), "iters": 6, "class_prior": "estimated",
                                    "val_size": 20, "rampup_iters": 10})
    results = train(cfg, tmp_path / "run", progress=False, log=lines.append)
    prior = results["class_prior"]
    assert len(prior["estimated"]) == 10 and abs(sum(prior["estimated"]) - 1) < 1e-3
    assert prior["labelled"] == [0.1] * 10 and "val_error_labelled_prior" in results
    assert any(line.startswith("class prior of the ") for line in lines)
    # six steps of a ten-step ramp-up: the run says it stopped early, in its log, results and summary
    assert any("before the unlabelled images' terms ramped up" in w for w in results["warnings"])
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "**Warning**: the run ended after 6 steps" in summary and "| recall by class (test) |" in summary
    assert set(results["test_recall"]) == {str(k) for k in range(10)}
    from stochreg.runtime.checkpoints import load_checkpoint
    final = load_checkpoint(tmp_path / "run" / "checkpoint.pt")     # what predict and export load
    before = load_checkpoint(next((tmp_path / "run" / "checkpoints").glob("step-*.pt")))   # the last step's
    head = [key for key, value in final["model"].items() if key.endswith("bias") and value.shape == (10,)][-1]
    shift = final["ema"][head] - before["ema"][head]
    expected = torch.tensor(prior["estimated"]).log() - torch.tensor(prior["labelled"]).log()
    assert torch.allclose(shift, expected, atol=1e-2)   # the priors are kept rounded
