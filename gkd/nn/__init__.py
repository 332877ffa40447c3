"""Backbone zoo: ``build_model(name, in_channels, out_channels, **kwargs)``."""
from .models import GAT, GCN, MLP, MODELS, BasicModel, GraphSAGE, build_model, graph_of, to_adj_t

__all__ = ["BasicModel", "GCN", "GAT", "GraphSAGE", "MLP", "MODELS", "build_model", "to_adj_t", "graph_of"]
