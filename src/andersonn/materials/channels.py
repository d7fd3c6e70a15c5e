"""Names of the ``alms-pores`` image channels, and channel selection for ablations.

The task image (:func:`andersonn.materials.image.structure_image`) is
``(16, S, S)``: the 9 node-neighbour graph channels of
:mod:`andersonn.materials.image` (:data:`GRAPH_CHANNELS`), the 4
pore-profile channels of :mod:`andersonn.materials.porespace`
(:data:`PORE_CHANNELS`), and 3 pore-size planes (:data:`PORE_SIZE_CHANNELS`:
our own PLD, LCD and LFPD estimates from the atoms, each a constant plane,
see :func:`andersonn.materials.porespace.pore_size_planes`).  The cache
stores the first 13 (:data:`CACHED_CHANNELS`) and the pore sizes in the
record.  The names live here, in a module that imports
nothing else of the package, so that both of those modules can use them.

:func:`select_channels` turns a list of names (or the group names ``graph``
and ``porespace``) into indices into :data:`CHANNELS`, so a model can be
trained on a subset of the cached image (``channels="graph"`` is the old
9-channel image).

>>> len(CHANNELS), CHANNELS[9], CHANNELS[13]
(16, 'accessible_fraction', 'pld_estimate')
>>> select_channels("graph") == list(range(9)), select_channels("metal,void_fraction")
(True, [2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CACHED_CHANNELS", "CHANNELS", "CHANNEL_GROUPS", "GRAPH_CHANNELS", "PORE_CHANNELS", "PORE_SIZE_CHANNELS",
           "select_channels"]

#: Channels of the node-neighbour graph image (see :mod:`andersonn.materials.image`).
GRAPH_CHANNELS: tuple[str, ...] = (
    "atomic_number",
    "electronegativity",
    "metal",
    "coordination",
    "bond_hops",
    "distance",
    "atoms_within_6A",
    "atoms_within_10A",
    "void_distance",
)

#: Pore-profile channels (see :mod:`andersonn.materials.porespace`).
PORE_CHANNELS: tuple[str, ...] = (
    "accessible_fraction",
    "void_fraction",
    "channel_dimensionality",
    "accessible_surface",
)

#: Pore-size planes: our PLD / LCD / LFPD estimates (see :func:`andersonn.materials.porespace.pore_size_planes`).
PORE_SIZE_CHANNELS: tuple[str, ...] = ("pld_estimate", "lcd_estimate", "lfpd_estimate")

#: Channels of the task image, in the order they are stacked.
CHANNELS: tuple[str, ...] = GRAPH_CHANNELS + PORE_CHANNELS + PORE_SIZE_CHANNELS

#: The channels stored in a cached image file (the pore sizes are in its record).
CACHED_CHANNELS: tuple[str, ...] = GRAPH_CHANNELS + PORE_CHANNELS

#: Group names accepted by :func:`select_channels`.
CHANNEL_GROUPS: dict[str, tuple[str, ...]] = {"graph": GRAPH_CHANNELS, "porespace": PORE_CHANNELS,
                                              "poresize": PORE_SIZE_CHANNELS}


def select_channels(names: str | Sequence[str] | None) -> list[int]:
    """Indices into :data:`CHANNELS` of ``names``, in the order given.

    ``names``: channel names or group names (:data:`CHANNEL_GROUPS`), as a
    sequence or one comma-separated string; ``None`` or empty: every channel.
    Unknown or repeated names raise ``ValueError`` naming the valid ones.

    >>> select_channels(None) == list(range(16))
    True
    >>> select_channels("porespace,atomic_number")
    [9, 10, 11, 12, 0]
    >>> select_channels("pld")
    Traceback (most recent call last):
    ...
    ValueError: unknown channel(s) ['pld']; the channels are atomic_number, ...
    """
    if isinstance(names, str):
        names = [c.strip() for c in names.split(",")]
    wanted = [c for c in (names or []) if c]
    if not wanted:
        return list(range(len(CHANNELS)))
    unknown = [c for c in wanted if c not in CHANNELS and c not in CHANNEL_GROUPS]
    if unknown:
        raise ValueError(
            f"unknown channel(s) {unknown}; the channels are {', '.join(CHANNELS)} "
            f"(groups: {', '.join(f'{g} = the {len(v)} {g} channels' for g, v in CHANNEL_GROUPS.items())})"
        )
    out: list[int] = []
    for c in wanted:
        for name in CHANNEL_GROUPS.get(c, (c,)):
            i = CHANNELS.index(name)
            if i in out:
                raise ValueError(f"channel {name!r} selected twice")
            out.append(i)
    return out
