"""List sockets in CLOSE_WAIT: the peer closed, our side has not (an
application that forgot to close is the usual cause).  Reads lwIP's pcb
lists through introspect/helpers/sockets.py.  `--all` lists every socket;
`--state NAME` another state.

    unik py NAME examples/close_wait.py
    unik py --core CORE examples/close_wait.py --all   (after the script: its own options)
"""
import sys

from introspect.helpers.sockets import NO_STACK, has_stack, sockets, table

args = sys.argv[1:]
want = None if "--all" in args else \
    (args[args.index("--state") + 1] if "--state" in args else "CLOSE_WAIT")
if not has_stack(prog):
    print(NO_STACK)
    sys.exit(1)
rows = [r for r in sockets(prog) if want is None or r["state"] == want]
if not rows:
    print(f"no socket in {want}")
else:
    print("\n".join(table(rows)))
