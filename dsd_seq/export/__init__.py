"""Trained models as self-contained packages: export a run's checkpoint, load it back for inference.

``dsd_seq.export`` knows the package format (manifest, checksums, compressed sparse weights); what a
model needs at inference (features, vocabulary, image encoder) is written and read by the model family's
own code, named in the manifest as ``module:function``: one of a closed registry of the project's model
families (:mod:`dsd_seq.export.manifest_schema`), which a package cannot extend.
"""

from dsd_seq.export.loading import load_model
from dsd_seq.export.manifest_schema import register_inference_entry
from dsd_seq.export.package import FORMAT_VERSION, PackageError

__all__ = ["FORMAT_VERSION", "PackageError", "load_model", "register_inference_entry"]
