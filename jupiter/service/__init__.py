"""The service layer between the CLI and the runtime and backends: one module per job.

* `validation`: load a working folder and check everything a run needs;
* `record`: the deployment record, finding a deployment again;
* `plans`, `planning`: the agents' plan; mapping problems and the configured mapper;
* `deploy`: start a deployment, wait for it, stop it;
* `pipeline`, `wave_driver`: profile -> map -> dispatch (and distributed WAVE);
* `run`: submit frames, wait for them, flush statistics; `jupiter run` and `jupiter profile`;
* `summary`: what a run reports; `status`: what `jupiter status` shows;
* `faults`: fault injection (node speed, killing a node).
"""
