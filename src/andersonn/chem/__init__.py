"""ALMS molecule side: molecules -> node-neighbour images, quantum-chemistry labels, polarity data, screening.

Needs the ``chem`` extra (``pip install 'andersonn[chem]'``): importing any of its modules without
RDKit is a one-line :class:`~andersonn.extras.MissingExtraError` saying so.
"""

from andersonn.extras import require_extra

require_extra("chem", "andersonn.chem", ["rdkit"])
