"""The program: wires the core (``kiosk``), the drivers and the faces (``ui``) into what runs.

``app`` is the one composition root (``build_core``, ``Daemon``); ``cli`` the ``kiosk`` command,
one module per verb group; ``demo`` and ``replay`` drive the real program on simulated devices;
``bench`` measures it; ``notify`` and ``cpu`` are its systemd and CPU-placement integration.
"""
