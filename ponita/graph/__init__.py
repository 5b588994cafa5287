"""Graph construction in plain torch: fully connected, radius and k-NN graphs, and edge lifting.

Every builder returns ``edge_index`` of shape ``[2, E]`` with ``edge_index[0]`` the senders (``j``) and
``edge_index[1]`` the receivers (``i``), sorted by receiver and then by sender, ready for a CSR over
receivers. ``batch`` is the PyG batch vector (graph id per node, sorted), or ``None`` for one graph.
"""

from ponita.graph._edge_lifting import LiftedPointCloud, lift_edges_to_oriented_points
from ponita.graph._fully_connected_graph import fully_connected_graph, graph_sizes, num_fully_connected_edges, num_graphs
from ponita.graph._knn_graph import knn_graph
from ponita.graph._radius_graph import radius_graph

__all__ = [
    "LiftedPointCloud",
    "fully_connected_graph",
    "graph_sizes",
    "knn_graph",
    "lift_edges_to_oriented_points",
    "num_fully_connected_edges",
    "num_graphs",
    "radius_graph",
]
