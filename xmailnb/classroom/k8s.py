"""The class on Kubernetes (Zero to JupyterHub): what the chart's
``hub.extraConfig`` calls, and the board's launcher in the hub pod.

``deploy/z2jh/values.yaml`` is the values file; ``docs/classroom.md`` says
how it is used.  The class folder lives on the hub's own persistent volume
(``/srv/jupyterhub/class``), so ``classroom add``, ``passwd`` and
``remove`` work there (``kubectl exec``) and the board's state is kept.
Nothing about the people of the class is written into the values: the
trainer's role and each person's language are read from the roster.

Imported by the hub process only.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from ..errors import XmailnbError
from . import roster
from .board import main as _board
from .hubconfig import BOARD_SERVICE, TRAINER_ROLE

__all__ = ["CLASS_DIR", "trainer_roles", "spawner_environment", "board_main"]

#: The class folder in the hub pod: on the chart's hub volume (hub-db-dir).
CLASS_DIR = "/srv/jupyterhub/class"


def trainer_roles(class_dir: str = CLASS_DIR) -> list[dict[str, Any]]:
    """``JupyterHub.load_roles`` entries for the class: the trainer of the
    roster gets the board.  Read when the hub starts: after ``classroom
    init`` in the pod, restart the hub once (``kubectl rollout restart
    deployment/hub``).  Before there is a class, nobody gets the role."""
    try:
        trainer = [roster.load(class_dir).trainer.name]
    except (XmailnbError, OSError):
        trainer = []
    return [{"name": TRAINER_ROLE, "description": "The trainer: opens the class board.",
             "scopes": [f"access:services!service={BOARD_SERVICE}"], "users": trainer}]


def _account_value(class_dir: str, pick: Callable[[roster.Account], str], fallback: str) -> Callable[[Any], str]:
    def value(spawner: Any) -> str:
        try:
            account = roster.load(class_dir).account(spawner.user.name)
        except (XmailnbError, OSError):
            account = None
        return pick(account) if account is not None else fallback

    return value


def spawner_environment(class_dir: str = CLASS_DIR) -> dict[str, Callable[[Any], str]]:
    """``KubeSpawner.environment`` entries read from the roster at each
    start: the person's language (``init``/``add`` set it)."""
    return {"XMAILNB_LANG": _account_value(class_dir, lambda a: a.lang, "")}


def board_main() -> None:
    """Run the class board in the hub pod.

    The board's URL in the hub (``http://hub:8003``) names the chart's hub
    Service, which the proxy pod can reach (``hub.service.extraPorts``); the
    board itself must then listen on the pod's own addresses."""
    port = os.environ.get("XMAILNB_CLASS_BOARD_PORT", "8003")
    os.environ["JUPYTERHUB_SERVICE_URL"] = f"http://0.0.0.0:{int(port)}"
    _board()


if __name__ == "__main__":  # pragma: no cover
    from xmailnb.classroom.k8s import board_main as _main  # the module's own copy, as board.py does

    _main()
