"""The lecture's pre-training objectives: masking strategies, objectives, word rules and fill-mask."""
