"""The Qt window: panels per lecture area, reusable widgets, the job runner. Never calls transformers."""
