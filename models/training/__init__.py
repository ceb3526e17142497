"""Detector training groundwork: synthetic data, augmentation, batches, training, evaluation.

The registry, trigger, gate and experiment code call four plain functions:
`make_dataset` (synthetic.py), `split_for` (data.py), `train_detector` (train.py) and
`evaluate_detector` (evaluate.py). Nothing here imports the database or the web app.
"""

import os

# albumentations checks for updates over the network when imported unless told not to;
# the package sets this before any of its modules can import it.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
