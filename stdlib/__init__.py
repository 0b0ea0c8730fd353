"""The LwaS standard library (`import std.NAME`), shipped as .lwas sources."""
