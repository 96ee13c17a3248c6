"""The profilers of Jupiter: network (DRUPE), resources (DRUPE) and one-time execution.

* `fit`: guarded quadratic fits of transfer time against size, per link;
* `resources`: smoothed CPU and memory figures (psutil);
* `execution`: every DAG task on sample data, chained along the DAG;
* `session`: one profiling session across a deployment's agents, stored at
  home, assembled into the profile file `jupiter map` reads;
* `interface` and `plugins`: the original's integration interface (`get_network_data`,
  `get_resource_data`, `data_transfer`) for plugging in other tools.

The agent side (probing peers, running tasks) is `jupiter.runtime.extensions.probing`.
"""
