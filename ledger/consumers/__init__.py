"""Thin loops: poll a source -> decode -> apply to the projections -> store positions with the change."""
