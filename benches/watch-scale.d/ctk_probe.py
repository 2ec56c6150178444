"""Chaos Toolkit probe for benches/watch-scale: what hpchaos asks the
SageMaker API about one target each cycle (DescribeClusterNode, and one
newest-first ListClusterNodes page), with boto3, a client per call as
chaostoolkit-aws's activities make one."""
import os

import boto3


def target_running(cluster: str, node_id: str, endpoint: str) -> bool:
    client = boto3.client(
        "sagemaker", endpoint_url=endpoint, region_name=os.environ.get("AWS_DEFAULT_REGION", "us-west-2")
    )
    node = client.describe_cluster_node(ClusterName=cluster, NodeId=node_id)
    client.list_cluster_nodes(
        ClusterName=cluster, SortBy="CREATION_TIME", SortOrder="Descending", MaxResults=100
    )
    return node["NodeDetails"]["InstanceStatus"]["Status"] == "Running"
