"""Training, one job a module:

- ``checkpoint``: a unit's state (epochs, best score, early stopping) and its checkpoint folder;
- ``loop``: the epoch loop of one unit (one model file): build or resume, fit, select, finish;
- ``multiworker``: the same loop with our own step over a TF_CONFIG cluster;
- ``units``: which units a run trains and how their models are made (per class, shared trunk, cached);
- ``runner``: create or join a RUN, train it, write its thresholds and metrics;
- ``jobs``: ``--jobs N`` processes on one machine;
- ``final``: ``--final``, the val run's recipe retrained on train + val (the model to ship).
"""

from toolkit.train.final import final_config
from toolkit.train.jobs import train_parallel
from toolkit.train.multiworker import is_chief
from toolkit.train.runner import load_training_data, resume, start, train_and_finalize

__all__ = ["final_config", "is_chief", "load_training_data", "resume", "start", "train_and_finalize", "train_parallel"]
