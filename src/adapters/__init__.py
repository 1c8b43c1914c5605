"""Drivers that run the rtproto core on real I/O (imported as ``rtproto.adapters``)."""
