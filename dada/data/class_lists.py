"""Class lists that fix which classes a reduced set keeps (``search.class_list``), shipped or from a file.

``dada/reference/reduced-imagenet-120.json`` holds the official reduced ImageNet's 120 classes (VDIGPKU/DADA
search_relax/dataset.py:230), with its citation and licence.
"""

from __future__ import annotations

import json
from pathlib import Path

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference"


def shipped_class_lists() -> list[str]:
    """Names accepted by ``load_class_list`` besides a path."""
    return sorted(path.stem for path in REFERENCE_DIR.glob("*.json"))


def load_class_list(source: str) -> list[int]:
    """The ``classes`` of a shipped list (by name) or of a JSON file at ``source``."""
    path = REFERENCE_DIR / f"{source}.json" if source in shipped_class_lists() else Path(source)
    if not path.is_file():
        raise ValueError(
            f"class list {source!r} is neither a shipped list ({', '.join(shipped_class_lists())}) nor a JSON file"
        )
    classes = json.loads(path.read_text()).get("classes")
    if not isinstance(classes, list) or not all(isinstance(label, int) for label in classes):
        raise ValueError(f"{path} holds no 'classes' list of integer class indices")
    return classes
