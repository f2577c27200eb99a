"""Fault injection for tests/faults: a process started with ``VERSASEG_KILL_AT`` set sends itself SIGKILL at a write.

Python imports ``sitecustomize`` at start-up from the first folder on ``sys.path`` that has one; the kill tests put
this folder first on PYTHONPATH only for the processes they kill (see ``faultlib.KillAt``). The command line stays
``python -m versaseg.cli.main ...``: nothing of versaseg is replaced, the process only dies, as with ``kill -9``,
at an exact point of its writes instead of at a random time.

``VERSASEG_KILL_AT="<event> <name> <nth> <delay_s>"``, at the ``nth`` event whose target is ``name``:

- ``mkdtemp``: the temporary folder ``.<name>.*.tmp`` is created (``atomic_path``: the write of ``name`` begins;
  ``replace_folder`` users: the folder ``name`` starts to be built);
- ``replace``: ``os.replace``/``os.rename`` onto a path called ``name`` (a finished temporary is about to be renamed
  into place; the rename itself does not happen).

``delay_s`` 0 kills inside the event, before the operation; > 0 kills from a daemon thread that many seconds later,
wherever the process is then (in the middle of the write). Without the variable this module does nothing.
"""

import os
import sys

_SPEC = os.environ.get("VERSASEG_KILL_AT")
if _SPEC:
    import signal
    import threading

    _event, _name, _nth, _delay = _SPEC.split()
    _nth, _delay = int(_nth), float(_delay)
    _audit = {"mkdtemp": "tempfile.mkdtemp", "replace": "os.rename"}[_event]
    _seen = [0]

    def _kill() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def _hook(event, args) -> None:
        if event != _audit:
            return
        if event == "tempfile.mkdtemp":
            hit = os.path.basename(os.fspath(args[0])).startswith(f".{_name}.")
        else:
            hit = os.path.basename(os.fspath(args[1])) == _name
        if not hit:
            return
        _seen[0] += 1
        if _seen[0] != _nth:
            return
        if _delay <= 0:
            _kill()
        timer = threading.Timer(_delay, _kill)
        timer.daemon = True
        timer.start()

    sys.addaudithook(_hook)
