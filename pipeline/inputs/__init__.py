"""Read and check the inputs: sites, permits, zones, the AOI, and the imagery's assets.

- ``vectors``: the readers (``read_sites``, ``read_permits``, ``read_zones``,
  ``read_aoi``) that turn files into typed frames or raise ``InputError``.
- ``records``: one record's fields and geometry; ``InputWarning``.
- ``checks``: the sites against the imagery and the mapping unit.
- ``imagery``: every asset's header before a run, and what the run saw.
"""

from pipeline.inputs.records import InputWarning
from pipeline.inputs.vectors import read_aoi, read_permits, read_sites, read_zones

__all__ = ["InputWarning", "read_aoi", "read_permits", "read_sites", "read_zones"]
