"""The local HTTP JSON API that the CLI, scripts and AI agents use to drive a running node.

| module | what |
|---|---|
| app.py | the ASGI app: auth, parameter checks, errors |
| webapp.py, session.py, static/ | the participant web app and its browser login |
| routes.py | route and parameter types (a route is data) |
| openapi.py | the OpenAPI document generated from the routes |
| views.py | records and values as JSON |
| actions.py | records built from what a user asks, against what the store knows |
| network.py, work.py, settle.py, wallet.py, match.py | the handlers and route tables, by resource |
| evidence.py | evidence files: upload, download |
"""

from node.api.decide import DECISION_ROUTES
from node.api.evidence import EVIDENCE_ROUTES
from node.api.match import MATCH_ROUTES
from node.api.network import NETWORK_ROUTES
from node.api.routes import Route
from node.api.settle import SETTLEMENT_ROUTES
from node.api.wallet import WALLET_ROUTES
from node.api.webapp import SESSION_ROUTES
from node.api.work import WORK_ROUTES

ROUTES: tuple[Route, ...] = (
    NETWORK_ROUTES
    + WORK_ROUTES
    + DECISION_ROUTES
    + SETTLEMENT_ROUTES
    + WALLET_ROUTES
    + MATCH_ROUTES
    + EVIDENCE_ROUTES
    + SESSION_ROUTES
)

__all__ = ["ROUTES"]
