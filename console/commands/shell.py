from ..registry import Command


def run(ctx, args):
    from ..shell import repl
    return repl(ctx, ctx.name(args))


COMMAND = Command("shell", "interactive shell running these commands on one instance",
                  run, instance="optional", shell=False)
