"""The LwaS runtime: loads signed artifacts and hosts their services."""
