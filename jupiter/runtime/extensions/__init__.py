"""The agent's extensions: what only some nodes or deployments have.

* `home`: the home node's frames, statistics and the routes the CLI uses;
* `pricing`: pricing CIRCE (price reports, controllers, routing by price);
* `probing`: the profilers as they run inside an agent;
* `distributed_wave`: the agents map the DAG among themselves.

Each is a `jupiter.runtime.services.Extension`; they never import each
other (an import-linter contract checks it), and `jupiter.runtime.node`
wires together the ones that cooperate.
"""
