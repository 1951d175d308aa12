"""The ingestion service: venue streams in, every trade stored exactly once.

Receiving (connections -> per-instrument id buffers), gap filling over the
venue's REST, the raw journal, the writer (batched appends, batch listeners),
ownership (the LMDB writer lock or S3 leases), backfill and bulk loading.
"""
