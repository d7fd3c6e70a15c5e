"""Metal-organic frameworks for the ALMS: CIF -> periodic atom-bond graph -> image.

Public API (each documented in its module):

* :func:`read_structure`, :class:`CifError`                       -- ``cif``
* :func:`structure_to_graph`, :class:`PeriodicGraph`              -- ``graph``
* :func:`graph_to_image`, :func:`structure_image`                  -- ``image``
* :data:`CHANNELS`, :data:`GRAPH_CHANNELS`, :func:`select_channels` -- ``channels``
* :func:`porespace_channels`, :func:`pore_diameters`              -- ``porespace``
* :func:`build_image_cache`                                       -- ``cache``
* :func:`load_pores`, :data:`CLASS_NAMES`, :data:`PORE_BINS`      -- ``pores`` (task ``alms-pores``)
* :func:`descriptor_baseline`, :func:`all_baselines`              -- ``baseline``
* :func:`screen_cifs`                                             -- ``screen``

Needs the ``materials`` extra (``pip install 'andersonn[materials]'``): importing it without pymatgen
is a one-line :class:`~andersonn.extras.MissingExtraError` saying so.

>>> from andersonn.materials import CLASS_NAMES
>>> CLASS_NAMES
['gas', 'small-molecule', 'large-molecule', 'nucleic-acid']
"""

from andersonn.extras import require_extra

require_extra("materials", "andersonn.materials", ["pymatgen"])


from andersonn.materials.baseline import all_baselines, descriptor_baseline
from andersonn.materials.cache import build_image_cache
from andersonn.materials.channels import CHANNELS, GRAPH_CHANNELS, select_channels
from andersonn.materials.cif import CifError, read_structure
from andersonn.materials.graph import PeriodicGraph, structure_to_graph
from andersonn.materials.image import graph_to_image, structure_image
from andersonn.materials.pores import CLASS_NAMES, PORE_BINS, load_pores
from andersonn.materials.porespace import pore_diameters, porespace_channels
from andersonn.materials.screen import screen_cifs

__all__ = [
    "CHANNELS",
    "CLASS_NAMES",
    "GRAPH_CHANNELS",
    "PORE_BINS",
    "CifError",
    "PeriodicGraph",
    "all_baselines",
    "build_image_cache",
    "descriptor_baseline",
    "graph_to_image",
    "load_pores",
    "pore_diameters",
    "porespace_channels",
    "read_structure",
    "screen_cifs",
    "select_channels",
    "structure_image",
    "structure_to_graph",
]
