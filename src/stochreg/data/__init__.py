"""Datasets: standard on-disk readers, provisioning (download or offline), labelled splits."""
from .datasets import DATASETS, Dataset, is_digit_dataset, load_dataset
from .split import labelled_split, validation_split

__all__ = ["DATASETS", "Dataset", "is_digit_dataset", "load_dataset", "labelled_split", "validation_split"]
