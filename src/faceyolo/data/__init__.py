"""Data: WIDER FACE conversion, YOLO-face datasets, augmentations, loaders."""
