"""The LwaS language server."""
