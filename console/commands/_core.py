"""--core CORE [--kernel ELF] for the commands that print a live table
(ps, mem, log): the same table from a core, through introspect/snapshot.py."""
from __future__ import annotations

from ..registry import UsageError


def core_args(p) -> None:
    """Add --core and --kernel to a command's parser."""
    p.add_argument("--core", metavar="CORE",
                   help="read an ELF core (unik dump, or a panic's) instead of an instance")
    p.add_argument("--kernel", metavar="ELF",
                   help="with --core: the kernel it ran (default: found by build-id)")


def open_core(args):
    """The Program over args.core (None when the command runs live); bad
    cores and kernels are one-line UnikErrors, as for `unik py --core`."""
    if not args.core:
        if args.kernel:
            raise UsageError("--kernel goes with --core", "a live instance knows its kernel")
        return None
    if getattr(args, "name", None):
        raise UsageError(f"give an instance NAME or --core, not both ({args.name}, {args.core})",
                         "drop NAME to read the core")
    from introspect.program import Program
    return Program.from_core(args.core, args.kernel)
