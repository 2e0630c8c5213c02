"""The YOLOv5-Face model family: blocks, layer tables per variant, Detect head, build."""
