"""Imagery sources. Every provider ends in the same lazy cube with the same band names."""
