"""`unik sites`: which static probe sites are enabled right now, and
(--verify) whether the kernel's text is byte-identical to its ELF."""
from introspect import fbt, probetable, textcheck
from introspect.errors import UnikError

from ..registry import Command


def _args(p):
    p.add_argument("--verify", action="store_true",
                   help="compare every byte of the live kernel text with the ELF")
    p.add_argument("-a", "--all", action="store_true", help="list disabled sites too")


def run(ctx, args):
    inst = ctx.find(args)
    img = textcheck.text_image(inst.kernel)
    probes = {p.id - probetable.isa.FIRST_STATIC_PROBE: p
              for p in probetable.load(inst.kernel) if probetable.isa.FIRST_STATIC_PROBE <= p.id < probetable.isa.FIRST_FBT_PROBE}
    with ctx.channel(args) as ch:
        live = textcheck.read_text(ch, img)
    states = textcheck.site_states(img, live, probetable.sites(inst.kernel) +
                                   fbt.sites(inst.kernel))
    fbtnames = {fbt.entry_id(i): f"fbt::{name}:entry/return"
                for i, _, name in fbt.functions(inst.kernel)}
    for s in states:
        s["probe"] = fbtnames.get(s["index"]) or \
            (probes[s["index"]].fullname if s["index"] in probes else "?")
    diffs = textcheck.diff_ranges(img.data, live, img.addr)
    on_sites = [s["addr"] for s in states if s["state"] == "on"]
    foreign = [d for d in diffs if not textcheck.inside_site(d, on_sites)]
    shown = states if args.all else [s for s in states if s["state"] != "off"]
    if args.json:
        ctx.json({"instance": inst.name, "sites": len(states),
                  "enabled": sum(s["state"] == "on" for s in states),
                  "corrupt": sum(s["state"] == "corrupt" for s in states),
                  "shown": shown, "text_differs": [{"addr": a, "len": n} for a, n in foreign]
                  if args.verify else None})
    else:
        n_on = sum(s["state"] == "on" for s in states)
        ctx.write(f"{inst.name}: {len(states)} probe sites, {n_on} enabled")
        if shown:
            ctx.write(f"{'ADDRESS':>18}  {'STATE':<7}  PROBE")
            for s in shown:
                ctx.write(f"{s['addr']:#18x}  {s['state']:<7}  {s['probe']}")
        if args.verify:
            if foreign:
                for a, n in foreign[:20]:
                    ctx.write(f"text differs at {a:#x} ({n} bytes)")
            else:
                ctx.write(f"text matches the ELF ({len(img.data)} bytes"
                          f"{', apart from the enabled sites' if n_on else ''})")
    if args.verify and (foreign or any(s["state"] == "corrupt" for s in states)):
        raise UnikError(f"the kernel text of {inst.name} differs from {inst.kernel}",
                        "a probe site was not restored, or memory was overwritten")


COMMAND = Command("sites", "enabled static probe sites; --verify compares the text with the ELF",
                  run, args=_args, instance="optional")
