"""The learning loop: trigger checks, dataset snapshots, the frozen test set, training runs.

Human decisions are the ground truth; this package turns them into immutable training
snapshots, decides when to retrain (app.policy.retrain), runs one training at a time and
registers what it produced (app.registry) with its metrics and gate result. Serving only
ever changes through registry aliases, which nothing here moves.
"""
