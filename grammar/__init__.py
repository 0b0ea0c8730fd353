"""The LwaS grammar (lwas.lark), shipped as package data."""
