"""The compose tests import the e2e suite's helpers (``tests/e2e``: the stack's
``HostLab``, the cloud's waits and checks, the tenant's scenario) from there, not copies.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
