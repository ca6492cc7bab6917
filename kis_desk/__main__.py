"""``python -m kis_desk`` (and the PyInstaller entry point)."""

import os
import sys

if __name__ == "__main__":
    if os.environ.get("KIS_DESK_FROZEN_PROBE") == "1":
        # Hidden: check the (frozen) bundle has every runtime piece; see kis_desk/frozen_probe.py.
        from kis_desk.frozen_probe import main as probe_main

        sys.exit(probe_main())
    from kis_desk.cli import main

    sys.exit(main())
