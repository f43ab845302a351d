"""The HTTP API's routers, one per concern; each reads what it needs from ``request.app.state``."""
