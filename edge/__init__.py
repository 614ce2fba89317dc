"""PoseLift Edge: camera frames in, anonymized keypoints and shoplifting alerts out."""

__version__ = "0.1.0"
