"""``jupyterhub-idle-culler`` as the class runs it: stops trainees' servers
that were idle for too long (``classroom serve --idle-timeout``).

JupyterHub starts its services with SIGINT ignored and stops them with
SIGINT first, waiting 30 s before it insists: Ctrl-C on the class would
then hang that long.  This wrapper only restores the default SIGINT and
SIGTERM handling before handing over to the culler.
"""

from __future__ import annotations

import signal

from jupyterhub_idle_culler import main as culler_main


def main() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    culler_main()


if __name__ == "__main__":  # pragma: no cover
    main()
