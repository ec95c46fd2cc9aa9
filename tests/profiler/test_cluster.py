"""`themis profile --engine ray` on a real local multi-node Ray cluster (`ray.cluster_utils.Cluster`):
two nodes advertise different node classes, each class is measured on its own node, and
the merged profile has one device per class. GPU placement is checked on the task options
alone (no GPU here)."""

from __future__ import annotations

import pytest

from themis.cli.app import app
from themis.profiler.cluster import NodeClass, node_classes, task_options
from themis.profiler.table import MEASURED_STATUSES, read_profile

ray = pytest.importorskip("ray")


def test_nodes_group_by_their_node_class_resource_else_by_shape() -> None:
    nodes = [
        {"NodeID": "a", "Alive": True, "Resources": {"CPU": 16.0, "node_class:c7i": 1.0}},
        {"NodeID": "b", "Alive": True, "Resources": {"CPU": 16.0, "node_class:c7i": 1.0}},
        {"NodeID": "c", "Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0, "accelerator_type:A100": 1.0}},
        {"NodeID": "d", "Alive": False, "Resources": {"CPU": 4.0}},
        {"NodeID": "e", "Alive": True, "Resources": {"CPU": 4.0}},
    ]
    classes = node_classes(nodes)
    assert [(c.name, c.node_id) for c in classes] == [("c7i", "a"), ("cpu4", "e"), ("cpu8-gpu1-A100", "c")]
    gpu = classes[2]
    assert task_options(gpu) == {"num_cpus": 8, "num_gpus": 1, "max_retries": 0, "accelerator_type": "A100"}
    assert task_options(classes[0])["resources"] == {"node_class:c7i": 1}


@pytest.mark.slow
def test_profile_engine_ray_measures_every_node_class_on_its_own_node(tmp_path, cli_runner) -> None:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"node_class:small": 1}})
    cluster.add_node(num_cpus=2, resources={"node_class:large": 1})
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        expected = {name.removeprefix("node_class:"): n["NodeID"] for n in ray.nodes() for name in n["Resources"]
                    if name.startswith("node_class:")}
        out = tmp_path / "cluster.parquet"
        done = cli_runner.invoke(app, ["profile", "small_cnn", "--engine", "ray", "--cores", "1", "--batch-sizes", "1,4",
                                       "--budget-s", "0.05", "--min-samples", "100", "--warmup-calls", "1", "--out", str(out), "--json"])
        assert done.exit_code == 0, done.output
    finally:
        ray.shutdown()
        cluster.shutdown()
    frame = read_profile(out)
    assert sorted(frame["device_id"].unique()) == ["node-class:large", "node-class:small"]
    for device_id, cells in frame.groupby("device_id"):
        name = device_id.removeprefix("node-class:")
        assert sorted(cells["batch_size"]) == [1, 4] and set(cells["status"]) <= set(MEASURED_STATUSES)  # a shared machine may contend
        assert cells["device_name"].str.endswith(f"[{name}]").all()
    classes = frame.attrs["environment"]["node_classes"]
    assert {name: c["node_id"] for name, c in classes.items()} == expected  # each class ran on the node advertising it
    assert NodeClass("small", 1, 0, None, expected["small"], "node_class:small").device_id == "node-class:small"
