"""Backbone zoo: ``build_model(name, in_channels, out_channels, **kwargs)``; serving fast (:mod:`.serving`):
:class:`FastMLP`, :func:`sage_predict`."""
from .models import GAT, GCN, MLP, MODELS, BasicModel, GraphSAGE, build_model, graph_of, to_adj_t
from .serving import FastMLP, sage_predict

__all__ = ["BasicModel", "GCN", "GAT", "GraphSAGE", "MLP", "MODELS", "build_model", "to_adj_t", "graph_of", "FastMLP",
           "sage_predict"]
