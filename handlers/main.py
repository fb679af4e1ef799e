"""`main.py` for a Google Cloud Functions source deployment.

Cloud Functions loads `main.py` from the root of the uploaded source; `infra/gcp/deploy.sh`
stages this file there next to `core/` and `handlers/`. Locally, point functions-framework at
`handlers/gcp.py` directly (`--source handlers/gcp.py --target on_finalize`).
"""

from handlers.gcp import on_finalize

__all__ = ["on_finalize"]
