"""The runtime (CIRCE): node agents, the data plane, home, and runtime statistics.

Backend-independent: the same agent program runs as a local process, in a
container or in a pod. Nothing here imports the backends or the CLI.
"""
