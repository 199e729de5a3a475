"""The commands that use a trained model: ``eval`` (its test error again), ``predict`` (classes of
image files, printed or as CSV/JSON) and ``export`` (ONNX or TorchScript with a JSON sidecar)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from ..data import load_dataset
from ..runtime.devices import pick_device
from ..errors import DataError, StochregError
from ..evaluate import predict_probs
from ..runs.export import FORMATS, export_model
from ..data.folders import class_tree
from ..data.image_files import find_images
from ..data.images import read_image, read_images, stacked, try_each, unreadable_error
from ..runs.outliers import load_reference, out_of_class_scores
from ..runs.plots import confusion_matrix
from ..runs.predictions import PredictionWriter
from ..runs.report import most_frequent_confusions
from ..runs.trained import load_run
from ..train import image_options
from ..data.streaming import image_subset


# the help of the options eval, predict and export share
DEVICE_HELP = "auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N"
MODEL_HELP = "a run folder (its checkpoint.pt) or a checkpoint file"


def add_eval(sub) -> None:
    evaluate = sub.add_parser("eval", help="score a saved run on its test set or on other labelled images",
                              description="Load RUN_DIR/checkpoint.pt and report its test error (one JSON line), "
                                          "or its error on other labelled images (--on FOLDER).")
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--passes", type=int, default=1,
                          help="average this many stochastic passes (dropout and pooling kept random)")
    evaluate.add_argument("--split", choices=("test", "train"), default="test",
                          help="test: the test set; train: the training images the run used unlabelled, "
                               "where the dataset knows their labels (how well the run labelled its "
                               "unlabelled pool; the labelled split is left out)")
    evaluate.add_argument("--on", metavar="FOLDER",
                          help="score the run on other labelled images instead: FOLDER/CLASS/... with the run's "
                               "class names (some or all), as a test/ folder holds them; images are converted "
                               "to the model's channels and size")
    evaluate.add_argument("--confusions", type=int, default=0, metavar="K",
                          help="also list the K most frequent confusions (true class taken for predicted class)")
    evaluate.add_argument("--data-dir", help="data folder (default: the one the run used)")
    evaluate.add_argument("--device", default="auto", help=DEVICE_HELP)
    evaluate.set_defaults(handler=cmd_eval)


def add_predict(sub) -> None:
    predict = sub.add_parser("predict", help="classify image files with a trained model",
                             description="Predict the class of each image (PNG, JPEG...; folders are searched "
                                         "recursively). Images are converted to the model's channels and resized "
                                         "to its input size. Prints one line per image (path, class, "
                                         "probability), or writes --out as CSV or JSON with every class's "
                                         "probability.")
    predict.add_argument("model", metavar="RUN_DIR_OR_CHECKPOINT", help=MODEL_HELP)
    predict.add_argument("images", metavar="IMAGE_OR_FOLDER", nargs="+",
                         help="image files, or folders searched recursively for them")
    predict.add_argument("--passes", type=int, default=1,
                         help="average this many stochastic passes (test-time averaging; default 1)")
    predict.add_argument("--out", metavar="FILE",
                         help="write predictions to FILE.csv (path, class, confidence, predicted class index, "
                              "then a column p_NAME for each class's probability, and out_of_class: how unlike "
                              "every labelled training image it is, 0 to 2) or FILE.json (the same, "
                              "probabilities keyed by class name)")
    predict.add_argument("--reject", nargs="?", const="run", metavar="THRESHOLD",
                         help="answer `unknown` (index -1) for an image whose out-of-class score is above the "
                              "threshold the run chose when it trained (95%% of held-out images of its classes "
                              "score under it), or above THRESHOLD")
    predict.add_argument("--device", default="auto", help=DEVICE_HELP)
    predict.add_argument("--no-progress", dest="progress", action="store_false",
                         help="no progress bar (it shows only on a terminal)")
    predict.set_defaults(handler=cmd_predict)


def add_export(sub) -> None:
    export = sub.add_parser("export", help="write the trained model as ONNX, a torch.export program or TorchScript, "
                                           "with a JSON sidecar",
                            description="Write RUN's model (its reported weights) as a file other programs run: "
                                        "float32 images (N, C, H, W) with pixels divided by 255 in, class "
                                        "probabilities out. MODEL.json beside it gives the input size, channels, "
                                        "normalisation and class names. The file is checked on export: it must "
                                        "give the probabilities `stochreg predict` gives (ONNX is checked with "
                                        "onnxruntime: pip install 'stochreg[export]').")
    export.add_argument("model", metavar="RUN_DIR_OR_CHECKPOINT", help=MODEL_HELP)
    export.add_argument("--format", choices=tuple(FORMATS), default="onnx",
                        help="onnx (default; any ONNX runtime), pt2 (a torch.export program: "
                             "torch.export.load(FILE).module() runs it without stochreg) or torchscript "
                             "(torch.jit.load, which torch deprecates)")
    export.add_argument("--out", metavar="FILE", help="where to write it (default: RUN_DIR/model.onnx, model.pt2 or "
                                                      "model.pt)")
    export.set_defaults(handler=cmd_export)


def cmd_eval(args: argparse.Namespace) -> int:

    if args.passes < 1:
        raise StochregError(f"--passes must be at least 1, got {args.passes}")
    if args.confusions < 0:
        raise StochregError(f"--confusions must be 0 or more, got {args.confusions}")
    run = load_run(args.run_dir)
    cfg = run.config
    if args.on and args.split == "train":
        raise StochregError("--on scores other images; it cannot be combined with --split train")
    split = "folder" if args.on else args.split
    images, labels = _labelled_folder(Path(args.on), run) if args.on else _split_to_score(args, cfg)
    device = pick_device(args.device)
    predictions = predict_probs(run.model.to(device), images, cfg.eval_batch, args.passes, device).argmax(dim=1)
    wrong = predictions != labels
    report = {"run": str(args.run_dir), "split": split, **({"folder": args.on} if args.on else {}),
              "images": len(labels), "error": wrong.float().mean().item(), "errors": int(wrong.sum())}
    if split == "test":
        report["test_error"] = report["error"]       # the key earlier versions printed
    report.update(passes=args.passes, weights=run.weights)
    if args.confusions:
        counts = confusion_matrix(labels.numpy(), predictions.numpy(), run.num_classes)
        names = run.label_names
        report["confusions"] = [{"true": names[t], "predicted": names[p], "count": n}
                                for t, p, n in most_frequent_confusions(counts, args.confusions)]
    print(json.dumps(report))
    return 0


def _split_to_score(args: argparse.Namespace, cfg) -> tuple:
    """(images, labels) of the run's own test set, or of its unlabelled pool where labels are known."""
    # The test split needs only the test set: the user's training images stay on disk (stream).
    stream = cfg.stream if args.split == "train" else True
    data = load_dataset(cfg.dataset, args.data_dir or cfg.data_dir, **{**image_options(cfg), "stream": stream})
    if args.split == "test":
        images, labels = data.test_images, data.test_labels
        if not len(labels):
            raise DataError(f"{data.name} has no test images to evaluate {args.run_dir} on (add a test/CLASS/... "
                            "folder, or train with --holdout K); `--split train` scores the labelled pool")
        return images, labels
    return _unlabelled_pool_with_labels(Path(args.run_dir), data)


def _labelled_folder(folder: Path, run) -> tuple:
    """(images, labels) of FOLDER/CLASS/..., read at the run's input size, its classes named as the run's."""
    names = run.label_names
    items = class_tree(folder)
    unknown = sorted({name for _, name in items} - set(names))
    if unknown:
        raise DataError(f"class folder {folder / unknown[0]} is not a class of the run (its classes: "
                        f"{', '.join(names)})")
    images, resized = read_images([file for file, _ in items], run.image_shape)
    _note_resized(resized, len(items), run.image_shape)
    return images, torch.tensor([names.index(name) for _, name in items], dtype=torch.long)


def _unlabelled_pool_with_labels(run_dir: Path, data) -> tuple:
    """The training images a run used without their labels (all but its labelled split), those of
    them whose label the dataset knows: (images, labels)."""
    keep = data.train_labels >= 0                       # -1: an image of the user's unlabelled folder
    split_file = run_dir / "labelled_indices.json" if run_dir.is_dir() else run_dir.parent / "labelled_indices.json"
    if split_file.exists():
        labelled = torch.tensor(json.loads(split_file.read_text()), dtype=torch.long)
        if len(labelled) and int(labelled.max()) >= len(keep):
            raise DataError(f"{split_file} lists training images beyond the {len(keep)} of {data.name}: "
                            "the dataset changed since the run")
        keep[labelled] = False
    if not bool(keep.any()):
        raise DataError(f"--split train needs training images with known labels outside the labelled split; "
                        f"{data.name} has none (its unlabelled images carry no labels)")
    indices = torch.nonzero(keep).flatten()
    images = data.train_images
    # streamed images (--stream runs) stay undecoded until their batch is evaluated
    return image_subset(images, indices), data.train_labels[indices]


def _note_resized(resized: int, total: int, shape: tuple[int, int, int]) -> None:
    if resized:
        print(f"note: {resized} of {total} images resized to {shape[2]}x{shape[1]}, the model's input size",
              file=sys.stderr)


# images read and classified at a time: memory stays flat on a folder of any size, and rows appear as they come
PREDICT_BATCH = 256


def reference_and_threshold(run, reject: str | None) -> tuple[torch.Tensor | None, float | None]:
    """The run's labelled features for out-of-class scores (None for a run without them, unless --reject
    asks for them) and the threshold --reject names (None without --reject)."""
    try:
        reference, chosen = load_reference(run.folder)
    except DataError:
        if reject is not None:
            raise
        return None, None
    if reject is None:
        return reference, None
    if reject == "run":
        if chosen is None:
            raise StochregError(f"{run.folder} chose no threshold (too few labelled images): give one, --reject 0.3")
        return reference, chosen
    try:
        return reference, float(reject)
    except ValueError:
        raise StochregError(f"--reject takes a number (an out-of-class score, 0 to 2), got {reject!r} (an image? put "
                            "--reject after the images)") from None


def cmd_predict(args: argparse.Namespace) -> int:

    if args.passes < 1:
        raise StochregError(f"--passes must be at least 1, got {args.passes}")
    if args.out and Path(args.out).suffix.lower() not in (".csv", ".json"):
        raise StochregError(f"--out must end in .csv or .json, got {args.out}")
    run = load_run(args.model)
    reference, reject_above = reference_and_threshold(run, args.reject)
    files = find_images(args.images)
    device = pick_device(args.device)
    out = Path(args.out) if args.out else None
    names = run.label_names
    failures, resized = [], 0
    bar = tqdm(total=len(files), desc="predict", unit="img", disable=None if args.progress else True,
               file=sys.stderr, dynamic_ncols=True, leave=False)
    with bar, PredictionWriter(out, names, lambda line: bar.write(line, file=sys.stdout), reference is not None,
                               reject_above) as writer:
        for start in range(0, len(files), PREDICT_BATCH):
            batch = files[start:start + PREDICT_BATCH]
            read, failed = try_each(batch, lambda file: read_image(file, run.image_shape))
            failures += failed
            if read:
                images, batch_resized = stacked([result for _, result in read], run.image_shape)
                resized += batch_resized
                probs, scores = run.predict(images, passes=args.passes, device=device), None
                if reference is not None:
                    scores = out_of_class_scores(run.model, images, reference, run.config.eval_batch, device)[1]
                writer.add([file for file, _ in read], probs, scores)
            bar.update(len(batch))
    _note_resized(resized, len(files), run.image_shape)
    if out and writer.count:
        print(f"wrote {writer.count} predictions to {out}")
    if failures:
        where = f" written to {out}" if out else " printed above"
        raise unreadable_error(failures, f"; the readable images' predictions ({writer.count}) are{where}"
                               if writer.count else "")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    path, meta, checked = export_model(args.model, args.format, args.out)
    print(f"wrote {path} and {meta}; checked on {checked} images: the same probabilities as stochreg predict")
    return 0
