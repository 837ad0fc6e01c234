"""Integrity: hash chains, signed checkpoints, and the per-officer encryption that makes erasure real."""
