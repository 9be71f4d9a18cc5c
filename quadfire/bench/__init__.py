"""Benchmarks: each module here has `main(argv)`; `quadfire bench NAME` and
`benchmarks/NAME.py` both call it."""
