"""Release tools: bundling weights, writing model cards (`python -m tools.NAME`; not part of the installed package)."""
