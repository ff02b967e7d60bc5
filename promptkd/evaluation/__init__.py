"""ICL evaluation: LM scoring of classification prompts, task loading, experiment grids and reports.

Examples
--------
>>> from promptkd.evaluation import load_task, run_experiment, ICLClassifier
>>> callable(run_experiment)
True
"""

from promptkd.evaluation.experiment import (
    CellSummary,
    ExperimentResult,
    PairedComparison,
    SelectorSpec,
    majority_vote,
    read_rows,
    run_experiment,
    standard_selectors,
)
from promptkd.evaluation.scoring import ICLClassifier, label_continuation, log_softmax
from promptkd.evaluation.tasks import TASK_PRESETS, Task, TaskPreset, default_data_root, load_task, task_names

__all__ = [
    "TASK_PRESETS",
    "CellSummary",
    "ExperimentResult",
    "ICLClassifier",
    "PairedComparison",
    "SelectorSpec",
    "Task",
    "TaskPreset",
    "default_data_root",
    "label_continuation",
    "load_task",
    "log_softmax",
    "majority_vote",
    "read_rows",
    "run_experiment",
    "standard_selectors",
    "task_names",
]
