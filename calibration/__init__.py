"""INT8 calibration of the perception models."""
