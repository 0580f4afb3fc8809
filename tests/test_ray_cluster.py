"""``--ray ADDRESS`` on a cluster of two nodes: the actors spread over both, the results
are those of a one-process run.

The two nodes are two raylets on this machine (``ray.cluster_utils.Cluster``, Ray's
own way to test a multi-node cluster on one host): each has its own object store and
worker processes, and the driver reaches the cluster by its address as it would a
remote head node. The simulator listens on loopback, which both nodes share here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import ray
from ray.cluster_utils import Cluster

from core.client import choose_endpoint
from core.dataset import records_from_texts
from core.engine import Engine
from core.localserver import LocalServer, ServerConfig
from core.models import Person
from core.results import Status
from core.workers.placement import ACTOR_CPUS, actor_options, node_ids, spread
from core.workers.ray_pool import RayPool


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[Cluster]:
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        deadline = time.monotonic() + 60
        while len(node_ids(ray.nodes())) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # a node is alive before its CPUs are known (a loaded machine)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def node_of(handle: Any) -> Any:
    """The node an actor runs on, asked of the actor itself."""
    return handle.__ray_call__.remote(lambda _: ray.get_runtime_context().get_node_id())


async def rows_of(server: LocalServer, texts: list[str], ray_address: str | None) -> Any:
    engine = Engine(choose_endpoint(server.base_url, "fanout-sim", env={}))
    nodes: set[str] = set()
    async with (
        engine,
        engine.run(
            records_from_texts(texts),
            Person,
            strategy="gather_semaphore",
            concurrency=8,
            workers=1 if ray_address is None else 2,
            ray=ray_address,
        ) as run,
    ):
        pool = getattr(run, "pool", None)
        if ray_address is not None:
            assert isinstance(pool, RayPool)
            nodes = set(await asyncio.gather(*(node_of(a.handle) for a in pool.actors)))
        await run.execute()
    return run.rows, nodes


async def test_actors_spread_over_both_nodes_and_give_the_local_results(
    two_nodes: Cluster,
) -> None:
    texts = [f"My name is Node{chr(65 + i % 26)} and I am {18 + i} years old" for i in range(30)]
    alive = set(node_ids(ray.nodes()))
    assert len(alive) == 2  # both nodes up, with their CPUs known
    with LocalServer(ServerConfig(latency=0.01, jitter=0.0)) as server:
        local, _ = await rows_of(server, texts, None)
        remote, nodes = await rows_of(server, texts, two_nodes.address)
    assert nodes == alive  # one actor on each node: SPREAD, not both on the head
    assert [r.status for r in remote] == [Status.OK] * len(texts)
    assert [r.data for r in remote] == [r.data for r in local]


def test_spread_is_round_robin_over_the_nodes_that_can_work() -> None:
    nodes = [
        {"NodeID": "b", "Alive": True, "Resources": {"CPU": 4.0}},
        {"NodeID": "a", "Alive": True, "Resources": {"CPU": 2.0}},
        {"NodeID": "c", "Alive": False, "Resources": {"CPU": 8.0}},  # dead
        {"NodeID": "d", "Alive": True, "Resources": {"memory": 1.0}},  # no CPU to give
    ]
    assert node_ids(nodes) == ["a", "b"]
    assert spread(5, node_ids(nodes)) == ["a", "b", "a", "b", "a"]
    only_custom = [{"NodeID": "x", "Alive": True, "Resources": {"GPU": 1.0}}]
    assert node_ids(only_custom) == ["x"]  # nobody offers a CPU: every alive node counts
    assert spread(2, []) == [None, None]


def test_actors_ask_a_named_node_and_a_sliver_of_cpu_unless_no_node_has_one() -> None:
    n1, n2 = "11" * 28, "22" * 28  # Ray checks that a node id is one
    nodes = [
        {"NodeID": n2, "Alive": True, "Resources": {"CPU": 1.0}},
        {"NodeID": n1, "Alive": True, "Resources": {"CPU": 8.0}},
    ]
    asked = actor_options(3, nodes)
    assert [a["scheduling_strategy"].node_id for a in asked] == [n1, n2, n1]
    assert all(a["scheduling_strategy"].soft for a in asked)  # a gone node: placed elsewhere
    assert {a["num_cpus"] for a in asked} == {ACTOR_CPUS}  # none: Ray would ignore the node
    no_cpu = [{"NodeID": "33" * 28, "Alive": True, "Resources": {"GPU": 1.0}}]
    assert [a["num_cpus"] for a in actor_options(2, no_cpu)] == [0, 0]  # else never placed
    assert [a["scheduling_strategy"] for a in actor_options(1, [])] == ["SPREAD"]
