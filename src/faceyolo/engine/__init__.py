"""Training engine: loss, trainer, validator (mAP)."""
