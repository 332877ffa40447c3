"""What a command does, also the Python API: model artefacts (save/load)."""
from .artifact import ArtifactError, load, read_manifest, save

__all__ = ["save", "load", "read_manifest", "ArtifactError"]
