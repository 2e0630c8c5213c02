"""Inference: preprocess, NMS, mapping back, the FaceDetector API, alignment."""
