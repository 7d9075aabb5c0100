"""classtrack: which of my classes hold memory, how much, since when.

A re-creation of Pympler's ClassTracker with a C engine.  Migrating from
Pympler means replacing the word ``pympler`` with ``classtrack`` in imports.
"""
from classtrack import asizeof  # the module; calling it sizes (see asizeof.py)
from classtrack.asizeof import Asized, Asizer, asized, asizesof, basicsize, flatsize
from classtrack.classtracker import ClassTracker
from classtrack._core import DumpError
from classtrack.alive import retained_size, retained_sizes, why_alive
from classtrack._census import Census, CensusChange, CensusRow, census, load_census

__version__ = "0.1.0"

__all__ = ["ClassTracker", "Census", "CensusChange", "CensusRow", "DumpError", "census", "load_census", "retained_size", "retained_sizes", "why_alive", "Asized", "Asizer", "asized", "asizeof", "asizesof", "basicsize", "flatsize"]
