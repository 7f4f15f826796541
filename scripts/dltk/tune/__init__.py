"""`dltk tune`: the serving config (instances, max batch, queue delay) and client concurrency
with the most throughput under a p99 latency budget, found by triton-model-analyzer's brute
force (analyzer.py) or by our own faster search (search.py), written back to models.yml."""
