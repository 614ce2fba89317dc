"""STG-NF anomaly scoring: model directories, scorers (numpy, ONNX Runtime), import and training.

Importing this package is cheap (no onnxruntime, no torch): backends are imported when a scorer is
opened, torch only by the training and checkpoint-import code.
"""

from edge.scoring.architecture import ModelFormatError, StgnfArchitecture
from edge.scoring.card import ModelCard
from edge.scoring.model_io import read_card, write_card
from edge.scoring.scorer import Scorer, load_scorer

__all__ = ["ModelCard", "ModelFormatError", "Scorer", "StgnfArchitecture", "load_scorer", "read_card", "write_card"]
