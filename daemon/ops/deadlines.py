"""One reload deadline, shared by the daemon, ``roomd reload`` and the unit.

systemd 252 has no notify-reload: ``systemctl reload`` runs ``ExecReload=roomd reload``
and bounds it by ``TimeoutStartSec=`` (it kills the command and marks the reload failed
when that passes). So the three limits nest, each a little longer than the one inside it:

- the daemon gives a new generation (at start or on reload) at most ``PREWARM_DEADLINE``
  seconds to describe itself, prewarm a child and register; a plugin not ready by then
  keeps its previous generation (reload) or is marked FAILED (start), and the daemon
  answers;
- ``roomd reload`` waits ``RELOAD_CLIENT_TIMEOUT`` for that answer;
- the unit's ``TimeoutStartSec=`` is ``UNIT_START_TIMEOUT``, so systemd only steps in when
  the daemon itself is stuck.
"""

from __future__ import annotations

PREWARM_DEADLINE = 540.0
RELOAD_CLIENT_TIMEOUT = PREWARM_DEADLINE + 30.0
UNIT_START_TIMEOUT = int(PREWARM_DEADLINE + 60.0)  # 600 s: TimeoutStartSec=10min
