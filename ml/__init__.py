"""Loupe's learning library: data readers, models, imbalance-aware training, scoring,
metrics, acquisition strategies, drift tests and the active-learning simulator.

Pure numpy/torch/Pillow. Nothing here imports Django, Celery or Label Studio, and importing
``ml`` (or any submodule) never initialises CUDA: the device is chosen when work starts,
through :func:`ml.device.pick_device`.
"""
