"""Frame sources: cameras (jetson-utils or OpenCV) with a per-camera supervisor, and recorded-pose replay."""
