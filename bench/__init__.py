"""Benchmarks of Stackling's messaging: common-rpc against raw aio-pika and oslo.messaging.

Run ``python -m bench.rpc_bench`` from the repository root; see ``bench/README.md``.
"""
