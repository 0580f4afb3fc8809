"""Where a run's Ray actors go: evenly over the cluster's nodes.

Ray's ``SPREAD`` strategy is best effort: on a two-node cluster it put both of a
run's two actors on one node in a test, and four actors 3 + 1 in two of five
trials. An actor is a client's CPU, so an uneven split leaves a node's cores idle
while another's are the run's limit. Each actor is therefore asked for a node of
its own by name, in turn (actor i on node i mod n), softly: if that node is gone or
cannot take it, Ray places it elsewhere rather than fail the run.
"""

from __future__ import annotations

from typing import Any


def node_ids(nodes: list[dict[str, Any]]) -> list[str]:
    """The alive nodes that can run work (a CPU to offer), in a stable order; all alive
    nodes when none says it has a CPU (a cluster whose nodes advertise custom resources)."""
    alive = [n for n in nodes if n.get("Alive")]
    working = [n for n in alive if float(n.get("Resources", {}).get("CPU", 0)) > 0]
    return sorted(str(n["NodeID"]) for n in (working or alive))


def spread(count: int, nodes: list[str]) -> list[str | None]:
    """The node each of ``count`` actors asks for, round robin (None: no node known)."""
    if not nodes:
        return [None] * count
    return [nodes[i % len(nodes)] for i in range(count)]


def strategies(count: int) -> list[Any]:
    """Ray scheduling strategies for ``count`` actors on the connected cluster."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    listing: Any = ray.nodes  # untyped in Ray
    return [
        NodeAffinitySchedulingStrategy(node, soft=True) if node is not None else "SPREAD"
        for node in spread(count, node_ids(listing()))
    ]
