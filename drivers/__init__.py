"""Hardware drivers and their fakes, one module per device kind.

Real drivers and fakes implement the protocols in ``kiosk.devices``; ``drivers.factory``
(``build_devices``) picks them from the config's ``type`` fields. Fakes emulate the device at
the level where bugs happen and are first-class code: the demo and the tests run on them.
"""
