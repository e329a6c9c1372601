"""The kiosk's faces: the unattended screen, the guard console and the HTTP API.

``ui.app.create_app(core)`` builds the FastAPI app from core objects handed in; no business
rule lives in a route and nothing is created at import time.
"""
