"""The templates, fillers and perturbations the suite generator draws from, one module per category.

Every word here was written for this project; no prompt is copied from a
dataset. Each module names its ``CATEGORY`` and lists its ``SUBCATEGORIES``
(name, number of probes, and a draw function taking a ``random.Random``).
"""
