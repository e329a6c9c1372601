"""The fleet: a district's kiosks into one PostgreSQL database, and lists out to every gate.

* ``office.pg`` — the PostgreSQL target of ``kiosk pull`` (``PgTarget``): the same
  resumable, idempotent, chain-checked pull loop as the SQLite target (``office.pull.Puller``),
  into ``fleet_events`` keyed ``(kiosk_id, seq)`` and indexed by day.
* ``office.collector`` — ``kiosk collect``: pulls many kiosks concurrently, forever, and
  shows each one's last seq, lag and last error on a small page and ``/metrics``; it also
  serves the office's signed list bundle to the gates.
* ``office.district`` — the daily report across gates, from the central database.
* ``office.listsync`` — the office signs a list bundle (``publish_bundle``); each kiosk
  fetches it on a schedule (``ListSync``: ETag, signature, never an older version, applied
  atomically) and says how old its lists are.

See ``docs/fleet.md``. Nothing here runs at import time, and ``psycopg`` is imported only by
the modules that talk to PostgreSQL, so a kiosk that never uses it does not need it.
"""
