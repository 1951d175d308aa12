"""Venue adapters: each exchange's wire protocol, parsed into venue-neutral trades."""
