"""swift-ascend is never installed by default (torch-npu pins its own torch), so its tests import
the package from the source folder: the folder above `tests/` goes on sys.path. Nothing registers an
entry point this way; the tests build their plugin managers from explicit sources."""

import sys
from pathlib import Path

SOURCE = str(Path(__file__).resolve().parent.parent)
if SOURCE not in sys.path:
    sys.path.insert(0, SOURCE)
