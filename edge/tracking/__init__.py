"""Person tracking: ByteTrack in Numba, faithful to the original, and the per-camera tracking stage.

Public surface: ``edge.tracking.bytetrack.ByteTracker`` (arrays in, arrays out),
``edge.tracking.stage.TrackingStage`` (``Detections`` -> ``Tracks`` with pseudonymous ids and
lifecycle events), ``edge.tracking.pseudonyms`` (ids that may leave the device),
``edge.tracking.lapjv.linear_assignment`` and ``edge.tracking.mot_metrics.evaluate`` (MOTA, IDF1).
Nothing is imported here, so that importing the package stays free of Numba.
"""
