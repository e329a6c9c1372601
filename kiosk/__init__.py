"""Checkpoint kiosk core: policy, thermometry, passes, engine and event log.

Nothing in this package touches hardware or the web framework; drivers live in ``drivers``
and the screens and HTTP API in ``ui``, each built from core objects handed in.
"""

__version__ = "0.1.0"
