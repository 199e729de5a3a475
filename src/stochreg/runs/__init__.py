"""What a run folder holds and who reads it: loading a trained run and predicting with it
(trained.py), listing and comparing runs (listing.py), summary.md (report.py), the figures
(plots.py), metrics.jsonl and TensorBoard (metrics.py), and ONNX/TorchScript export (export.py)."""
