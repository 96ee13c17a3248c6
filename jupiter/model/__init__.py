"""The model layer: typed objects for every input format, and their parsers.

Nothing here imports from the algorithms, the runtime, the backends or the CLI.
"""
