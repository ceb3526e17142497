"""The learning loop: trigger checks, dataset snapshots, the frozen test set, training runs.

Human decisions are the ground truth; this package turns them into immutable training
snapshots, decides when to retrain (app.policy.retrain), runs one training at a time and
registers what it produced (app.registry) with its metrics and gate result. A classifier
candidate (new prompts, few-shot examples or weights) is a run too: evaluated on verified
crops, not trained (classifier.py, crops.py, fewshot.py). Serving only changes through
registry aliases; nothing here moves the champion, and a candidate that passed its gate
is at most staged as the challenger of an experiment (run_steps.py).
"""
