"""Files, paths, errors, progress, chart data and the saved session: the ground every other area stands on."""
