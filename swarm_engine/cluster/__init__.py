"""Evals across many machines on a Ray cluster (``swarm eval --cluster``).

Ray is an optional extra (``pip install 'swarm-engine[cluster]'``) and is
imported only when a cluster is asked for, so the engine imports without it.
This package sits between ``cli`` and ``learn``/``eval``: it runs evals, and
nothing below it knows it exists.
"""

from swarm_engine.cluster.address import ClusterAddress, parse_cluster
from swarm_engine.cluster.connect import import_ray, ray_cluster
from swarm_engine.cluster.ray_eval import run_eval_cluster

__all__ = ["ClusterAddress", "parse_cluster", "import_ray", "ray_cluster", "run_eval_cluster"]
