"""Datasets: readers for on-disk formats, named sources with a cache, statistics."""
