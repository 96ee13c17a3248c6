"""Jupiter: an orchestrator for dispersed computing.

Jupiter profiles a set of heterogeneous nodes and the links between them, maps
the tasks of a DAG application onto those nodes, and streams input files
through the tasks. It rebuilds USC ANRG's Jupiter v4 with the same file
formats and concepts.
"""

__version__ = "0.1.0"
