"""Binance protocol: frame parsing, recorded-file readers, REST client, replay server.

Nothing here knows about ArcticDB: bytes and files in, typed trades out.
"""
