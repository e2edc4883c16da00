"""Folded stacks (probes/folded.py) and the flame graph SVG
(probes/flamegraph.py): pure, no kernel."""
import re
import xml.etree.ElementTree as ET

import pytest

from probes import flamegraph, folded
from probes.flamegraph import FG_NS, XPAD, render_svg

SVG = "{http://www.w3.org/2000/svg}"
FG = "{" + FG_NS + "}"

SAMPLES = [
    (("main", "work", "spin"), 60),
    (("main", "work", "copy"), 25),
    (("main", "idle"), 10),
    (("main", "work", "spin"), 5),      # merges with the first
    (("irq",), 1),
]


# ---- folded ---------------------------------------------------------------

def test_fold_merges_and_sorts():
    text = folded.fold(SAMPLES)
    assert text == ("irq 1\n"
                    "main;idle 10\n"
                    "main;work;copy 25\n"
                    "main;work;spin 65\n")


def test_fold_parse_round_trip():
    rows = folded.merge(SAMPLES)
    assert folded.parse(folded.fold(SAMPLES)) == rows
    assert folded.fold(folded.parse(folded.fold(SAMPLES))) == folded.fold(SAMPLES)


def test_fold_drops_zero_counts_and_empty_input():
    assert folded.fold([(("a",), 0), (("b",), 2)]) == "b 2\n"
    assert folded.fold([]) == ""
    assert folded.parse("") == []


def test_sanitize_frames():
    assert folded.sanitize_frame("a;b") == "a:b"
    assert folded.sanitize_frame("x\ny\rz") == "x y z"
    assert folded.sanitize_frame("ctl\x01\x7f") == "ctl??"
    assert folded.sanitize_frame("") == "[unknown]"
    assert folded.sanitize_frame("  ") == "[unknown]"
    assert folded.sanitize_frame("operator<< (int)") == "operator<< (int)"
    # sanitising can make stacks equal: they merge
    text = folded.fold([(("f;g",), 1), (("f:g",), 2), (("a b", "c\nd"), 3)])
    assert text == "a b;c d 3\nf:g 3\n"
    assert folded.parse(text) == [(("a b", "c d"), 3), (("f:g",), 3)]


def test_parse_tolerates_blank_lines_crlf_and_tabs():
    assert folded.parse("\nmain;f 3\r\n\n  \ng\t7\n") == [(("main", "f"), 3), (("g",), 7)]


@pytest.mark.parametrize("text, lineno, why", [
    ("main;f 3\nmain;g\n", 2, "no count"),
    ("main;f x3\n", 1, "not a non-negative decimal"),
    ("main;f -3\n", 1, "not a non-negative decimal"),
    ("main;f 1.5\n", 1, "not a non-negative decimal"),
    ("ok 1\nmain;;f 3\n", 2, "frame 2 is empty"),
    ("main;f; 3\n", 1, "frame 3 is empty"),
    (";main 3\n", 1, "frame 1 is empty"),
    ("a 1\nb 2\n\n42\n", 4, "no count"),
])
def test_parse_errors_name_line_and_reason(text, lineno, why):
    with pytest.raises(ValueError) as e:
        folded.parse(text)
    assert str(e.value).startswith(f"line {lineno}: ")
    assert why in str(e.value)


@pytest.mark.parametrize("samples, why", [
    ([((), 1)], "empty stack"),
    ([(("a",), -1)], "negative count"),
    ([(("a",), 1.5)], "not an integer"),
    ([(("a",), True)], "not an integer"),
    ([("main;f", 1)], "not the string"),
])
def test_fold_rejects_bad_samples(samples, why):
    with pytest.raises(ValueError, match=why):
        folded.fold(samples)


# ---- SVG ------------------------------------------------------------------

def frames_of(svg: str) -> list:
    """(title text, rect, text element, g) of every frame, in document order."""
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == SVG + "svg"
    out = []
    for g in root.iter(SVG + "g"):
        if g.get("class", "").split()[:1] == ["frame"]:
            out.append((g.find(SVG + "title").text, g.find(SVG + "rect"),
                        g.find(SVG + "text"), g))
    return out


def by_name(svg: str) -> dict:
    return {t.rsplit(" (", 1)[0]: (t, r, x, g) for t, r, x, g in frames_of(svg)}


def prefixes(samples) -> set:
    return {fr[:i] for fr, c in folded.merge(samples) for i in range(1, len(fr) + 1)}


def test_svg_is_xml_with_one_frame_per_prefix_plus_root():
    svg = render_svg(SAMPLES)
    frames = frames_of(svg)
    assert len(frames) == len(prefixes(SAMPLES)) + 1     # 6 prefixes + "all"
    assert len(frames) == 7
    assert frames[0][0] == "all (101 samples, 100.00%)"
    for _, rect, text, g in frames:
        assert rect is not None and text is not None
        assert int(g.get(FG + "w")) > 0


def test_svg_widths_proportional_to_counts():
    width = 1200
    svg = render_svg(SAMPLES, width=width)
    plot = width - 2 * XPAD
    f = by_name(svg)
    total = 101
    for name, count, x in [("all", 101, 0), ("main", 100, 1), ("work", 90, 11),
                           ("spin", 65, 36), ("copy", 25, 11), ("idle", 10, 1),
                           ("irq", 1, 0)]:
        title, rect, _, g = f[name]
        assert int(g.get(FG + "w")) == count
        assert int(g.get(FG + "x")) == x
        assert float(rect.get("width")) == pytest.approx(count * plot / total, abs=0.005)
        assert float(rect.get("x")) == pytest.approx(XPAD + x * plot / total, abs=0.005)
    # siblings in name order, abutting: idle then work above main
    assert float(f["idle"][1].get("x")) + float(f["idle"][1].get("width")) == \
        pytest.approx(float(f["work"][1].get("x")), abs=0.01)
    assert f["spin"][1].get("width") == "%.2f" % (65 * plot / total)


def test_svg_titles_carry_counts_and_percentages():
    f = by_name(render_svg(SAMPLES))
    assert f["spin"][0] == "spin (65 samples, 64.36%)"
    assert f["work"][0] == "work (90 samples, 89.11%)"
    assert f["irq"][0] == "irq (1 samples, 0.99%)"


def test_svg_depth_puts_children_above_and_icicle_below():
    f = by_name(render_svg(SAMPLES))
    ys = [float(f[n][1].get("y")) for n in ("all", "main", "work", "spin")]
    assert ys == sorted(ys, reverse=True) and len(set(ys)) == 4
    f = by_name(render_svg(SAMPLES, inverted=True))
    ys = [float(f[n][1].get("y")) for n in ("all", "main", "work", "spin")]
    assert ys == sorted(ys) and len(set(ys)) == 4
    assert [int(f[n][3].get(FG + "d")) for n in ("all", "main", "work", "spin")] == [0, 1, 2, 3]


def test_svg_omits_frames_under_min_width_with_descendants():
    samples = [(("main", "big"), 100000), (("main", "tiny", "tinier"), 1),
               (("main", "small"), 100)]
    plot = 1200 - 2 * XPAD
    # tiny is 1/100101 of 1180 px = 0.0118 px: under the default 0.1 px
    f = by_name(render_svg(samples))
    assert set(f) == {"all", "main", "big", "small"}
    assert f["main"][0].startswith("main (100101 samples,")
    # small (100 samples = 1.18 px) goes at min_width 2, stays at 1
    f = by_name(render_svg(samples, min_width=2))
    assert set(f) == {"all", "main", "big"}
    f = by_name(render_svg(samples, min_width=0))
    assert set(f) == {"all", "main", "big", "small", "tiny", "tinier"}
    # the omitted frame's samples still place its later siblings
    assert int(f["tiny"][3].get(FG + "x")) == 100100
    f = by_name(render_svg(samples, min_width=1))
    assert "small" in f and "tiny" not in f
    assert float(f["small"][1].get("width")) == pytest.approx(100 * plot / 100101, abs=0.005)


def test_svg_escapes_hostile_names():
    hostile = ['<script>alert(1)</script>', 'a&b', 'say "hi"', "it's", "]]>", "x\x00y"]
    samples = [(("main", h), 100) for h in hostile]
    svg = render_svg(samples, title='<b>"t" & \'u\'</b>', subtitle="<i>&</i>")
    assert "<script>alert" not in svg
    assert svg.count("<script") == 1       # only our own
    root = ET.fromstring(svg.encode("utf-8"))
    texts = [t.text for t in root.iter(SVG + "text")]
    assert '<b>"t" & \'u\'</b>' in texts and "<i>&</i>" in texts
    f = by_name(svg)
    for h in hostile[:-1]:
        assert h in f, h
        assert f[h][2].text == h            # the label, unescaped by the parser
    assert "x?y" in f                       # NUL is no XML character


def test_svg_labels_cut_to_width():
    long = "a_really_long_function_name_that_cannot_fit"
    f = by_name(render_svg([(("main", long), 1), (("main", "wide"), 30)], width=300))
    label = f[long][2].text or ""
    assert label == "" or (label.endswith("..") and len(label) < len(long))
    f = by_name(render_svg([(("main", long), 1)], width=1200))
    assert f[long][2].text == long
    assert flamegraph.label(long, 60, 12) == long[:5] + ".."
    assert flamegraph.label(long, 20, 12) == ""


def test_svg_script_has_zoom_and_search():
    svg = render_svg(SAMPLES)
    root = ET.fromstring(svg.encode("utf-8"))
    scripts = list(root.iter(SVG + "script"))
    assert len(scripts) == 1
    js = scripts[0].text
    for fn in ("fg_init", "fg_zoom", "fg_unzoom", "fg_search", "fg_search_prompt",
               "fg_fit", "fg_union"):
        assert re.search(r"function %s\(" % fn, js), fn
    assert "new RegExp" in js and "Matched: " in js
    assert "total: 101" in js
    ids = {e.get("id") for e in root.iter() if e.get("id")}
    assert {"frames", "unzoom", "search", "matched", "details"} <= ids


def test_svg_colours_warm_and_deterministic():
    a = render_svg(SAMPLES)
    assert a == render_svg(list(reversed(SAMPLES)))
    assert a == render_svg(SAMPLES)
    for _, rect, _, _ in frames_of(a):
        r, g, b = map(int, re.fullmatch(r"rgb\((\d+),(\d+),(\d+)\)", rect.get("fill")).groups())
        assert r >= 205 and g <= 230 and b <= 55
    assert flamegraph.color("spin") == flamegraph.color("spin")
    assert flamegraph.color("spin") != flamegraph.color("spim")


def test_svg_from_folded_text_and_empty_input():
    text = folded.fold(SAMPLES)
    assert render_svg(folded.parse(text)) == render_svg(SAMPLES)
    empty = render_svg([])
    assert frames_of(empty) == []
    assert "No samples" in empty


def test_svg_bad_arguments():
    with pytest.raises(ValueError, match="nothing can be drawn"):
        render_svg(SAMPLES, width=10)
    with pytest.raises(ValueError, match="empty stack"):
        render_svg([((), 3)])


# ---- the script, run by node against a small DOM built from the SVG ---------

_DOM = r"""
const fs = require("fs");
const doc = JSON.parse(fs.readFileSync(0, "utf8"));
class El {
  constructor(j) {
    this.tag = j.tag; this.attrs = j.attrs; this.textContent = j.text;
    this.children = j.children.map(c => new El(c)); this.style = {}; this.on = {};
  }
  getAttribute(n) { return n in this.attrs ? this.attrs[n] : null; }
  getAttributeNS(ns, n) { return this.getAttribute("{" + ns + "}" + n); }
  setAttribute(n, v) { this.attrs[n] = String(v); }
  addEventListener(ev, f) { this.on[ev] = f; }
  *walk() { for (const c of this.children) { yield c; yield* c.walk(); } }
  getElementsByTagName(t) { return [...this.walk()].filter(e => e.tag === t); }
}
const root = new El(doc.svg);
global.document = {getElementById: id => [...root.walk()].find(e => e.attrs.id === id)};
let answer = "";
global.window = {addEventListener() {}, prompt: () => answer};
const s = root.getElementsByTagName("script")[0].textContent;
(0, eval)(s.replace("fg_init();", "") + "\nglobal.fg_init = fg_init; global.fg = fg;"
          + "global.fg_search = fg_search;");
fg_init();
const frame = n => fg.frames.find(f => f.name === n);
const view = () => fg.frames.map(f => [f.name, f.g.style.display === "none" ? null :
    [+f.rect.attrs.x, +f.rect.attrs.width, f.g.attrs.class, f.text.textContent]]);
const out = {full: view()};
frame("work").g.on.click();
out.zoom = view();
document.getElementById("unzoom").on.click();
out.unzoom = view();
answer = "^(work|spin)$";
document.getElementById("search").on.click();
out.matched = document.getElementById("matched").textContent;
out.fills = fg.frames.map(f => [f.name, f.rect.attrs.fill]);
out.button = document.getElementById("search").textContent;
document.getElementById("search").on.click();
out.cleared = [document.getElementById("matched").textContent,
               fg.frames.every(f => f.rect.attrs.fill === f.fill)];
fg_search("(");
out.bad = document.getElementById("details").textContent;
console.log(JSON.stringify(out));
"""


def _tree(e):
    return {"tag": e.tag.split("}")[-1], "attrs": dict(e.attrib), "text": e.text or "",
            "children": [_tree(c) for c in e]}


def test_script_zooms_and_searches_under_node():
    import json
    import shutil
    import subprocess
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.fail("node is not installed: `make test` installs it (apt-get install nodejs)")
    svg = render_svg(SAMPLES, width=1200)
    doc = {"svg": _tree(ET.fromstring(svg.encode("utf-8")))}
    r = subprocess.run([node, "-e", _DOM], input=json.dumps(doc), text=True,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    plot = 1200 - 2 * XPAD
    full = dict(out["full"])
    # the script's initial placement equals what Python drew
    for t, rect, text, g in frames_of(svg):
        name = t.rsplit(" (", 1)[0]
        assert full[name] is None or full[name][0] == pytest.approx(float(rect.get("x")))
    zoom = dict(out["zoom"])
    assert zoom["idle"] is None and zoom["irq"] is None
    assert zoom["work"][:3] == [XPAD, plot, "frame"]
    assert zoom["main"][:3] == [XPAD, plot, "frame parent"]
    assert zoom["all"][2] == "frame parent"
    assert zoom["spin"][1] == pytest.approx(65 * plot / 90, abs=0.005)
    assert zoom["copy"][0] == pytest.approx(XPAD, abs=0.005)        # copy < spin
    assert zoom["spin"][0] == pytest.approx(XPAD + 25 * plot / 90, abs=0.005)
    assert dict(out["unzoom"]) == full
    # work (90) contains spin (65): counted once -> 90 / 101
    assert out["matched"] == "Matched: 89.11%"
    fills = dict(out["fills"])
    assert fills["work"] == fills["spin"] == flamegraph.SEARCH_FILL
    assert fills["copy"] != flamegraph.SEARCH_FILL
    assert out["button"] == "Reset Search"
    assert out["cleared"] == [" ", True]
    assert out["bad"].startswith("bad regular expression")
