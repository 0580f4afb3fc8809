"""Where a run's Ray actors go: evenly over the cluster's nodes.

Ray's ``SPREAD`` strategy is best effort: on a two-node cluster it put both of a
run's two actors on one node in a test, and four actors 3 + 1 in two of five
trials. An actor is a client's CPU, so an uneven split leaves a node's cores idle
while another's are the run's limit. Each actor is therefore asked for a node of
its own by name, in turn (actor i on node i mod n), softly: if that node is gone or
cannot take it, Ray places it elsewhere rather than fail the run.

An actor asks for a hundredth of a CPU, not none: Ray places an actor that asks
for no resource on a node of its own choosing, whatever node it was told to use
(ray-project/ray#25344; seen here as one test in three with both actors on one
node). On a cluster where no node offers a CPU it asks for nothing, as it could
not be placed otherwise.
"""

from __future__ import annotations

from typing import Any

ACTOR_CPUS = 0.01
"""What an extraction actor asks of its node: it waits on the network, not the CPU."""


def _cpus(node: dict[str, Any]) -> float:
    return float(node.get("Resources", {}).get("CPU", 0))


def node_ids(nodes: list[dict[str, Any]]) -> list[str]:
    """The alive nodes that can run work (a CPU to offer), in a stable order; all alive
    nodes when none says it has a CPU (a cluster whose nodes advertise custom resources)."""
    alive = [n for n in nodes if n.get("Alive")]
    working = [n for n in alive if _cpus(n) > 0]
    return sorted(str(n["NodeID"]) for n in (working or alive))


def spread(count: int, nodes: list[str]) -> list[str | None]:
    """The node each of ``count`` actors asks for, round robin (None: no node known)."""
    if not nodes:
        return [None] * count
    return [nodes[i % len(nodes)] for i in range(count)]


def actor_options(count: int, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ray actor options (node and CPU asked for) for ``count`` actors on ``nodes``
    (``ray.nodes()``)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    cpus = ACTOR_CPUS if any(n.get("Alive") and _cpus(n) > 0 for n in nodes) else 0
    return [
        {
            "num_cpus": cpus,
            "scheduling_strategy": "SPREAD"
            if node is None
            else NodeAffinitySchedulingStrategy(node, soft=True),
        }
        for node in spread(count, node_ids(nodes))
    ]


def cluster_nodes() -> list[dict[str, Any]]:
    """The connected cluster's nodes, as Ray lists them."""
    import ray

    listing: Any = ray.nodes  # untyped in Ray
    nodes: list[dict[str, Any]] = listing()
    return nodes
