"""Backbone zoo: ``build_model(name, in_channels, out_channels, **kwargs)``; serving fast (:mod:`.serving`):
:class:`FastMLP`, :func:`sage_predict`. The names are imported on first use, so the helpers beside the zoo
(propagation, hidden-layer capture, position features) do not import PyG's layers."""
from ..lazy import lazy_exports

_WHERE = {"BasicModel": "models", "GCN": "models", "GAT": "models", "GraphSAGE": "models", "MLP": "models",
          "MODELS": "models", "build_model": "models", "to_adj_t": "models", "graph_of": "models",
          "FastMLP": "serving", "sage_predict": "serving"}
__all__ = list(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
