"""LwaS, the Language with a Soul: axioms, rules and services compiled to signed native code."""
__version__ = "0.1.0"
