"""Recovery snapshots of the flows' state: pickled, and read back after classes have moved.

The incidents and occupancy flows snapshot each camera's state as pickled bytes, and Bytewax
hands the last snapshot back when a flow resumes, after a restart or an upgrade. A pickle
names every class by its module path, so a class that moves to another module would no
longer load, and an upgraded store could not resume. `load` therefore reads snapshots of
earlier versions through an explicit table of moved modules (MOVED): a release that moves a
class a snapshot can hold adds a row here, and tests/flows/test_snapshots.py loads state
pickled under the old names. (No module is left at an old path to catch them.)
"""

from __future__ import annotations

import io
import pickle
from typing import Any

# Module paths named in the snapshots of earlier versions -> the module that defines their
# classes now.
MOVED = {
    # Issue 18: the behaviour rules became the package flows.behaviour (a snapshot holds the
    # state types of tracks; the other modules are here so that any class of theirs loads).
    "flows.tracks": "flows.behaviour.tracks",
    "flows.frames": "flows.behaviour.frames",
    "flows.zones": "flows.behaviour.zones",
    "flows.signals": "flows.behaviour.signals",
    "flows.risk": "flows.behaviour.risk",
    "flows.posture": "flows.behaviour.posture",
    "flows.stores": "flows.behaviour.stores",
    # Before flows.tracks existed, the module flows.behaviour defined the state types itself.
    "flows.behaviour": "flows.behaviour.tracks",
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED.get(module, module), name)


def dump(state: Any) -> bytes:
    """A state as snapshot bytes."""
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def load(data: bytes) -> Any:
    """A state from snapshot bytes written by this version or an earlier one."""
    return _Unpickler(io.BytesIO(data)).load()
