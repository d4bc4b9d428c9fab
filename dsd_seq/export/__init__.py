"""Trained models as self-contained packages: export a run's checkpoint, load it back for inference.

``dsd_seq.export`` knows the package format (manifest, checksums, compressed sparse weights); what a
model needs at inference (features, vocabulary, image encoder) is written and read by the model family's
own code, named in the manifest as ``module:function`` (as a run config names its task).
"""

from dsd_seq.export.loading import load_model
from dsd_seq.export.package import FORMAT_VERSION, PackageError

__all__ = ["FORMAT_VERSION", "PackageError", "load_model"]
