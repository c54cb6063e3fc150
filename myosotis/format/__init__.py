"""Format layer: bytes <-> records, exactly as formatspec/FORMAT.md defines them.

No module in this package does I/O. ``helper`` wraps the C helper (CRC32C and
frame scanning) and its pure-Python twin.
"""
