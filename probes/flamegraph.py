"""Flame graphs: folded samples to a self-contained interactive SVG.

    render_svg(samples, title="Flame Graph", width=1200, ...) -> str

samples is what probes/folded.py handles: an iterable of (frames root
first, count).  Stacks are merged into a tree of stack prefixes: one node
per distinct prefix, children in name order (so the x order is
alphabetical, as flamegraph.pl's; the x axis is not time), each node as
wide as the samples under it.  The root, "all", spans the whole plot.

Every drawn node is one `<g class="frame">` holding a `<title>` tooltip
`name (N samples, P%)` (P of all samples, two decimals), a `<rect>` and a
`<text>` label cut to the width with "..".  The g carries the node's
position in samples, exactly, as `fg:x` (samples left of it), `fg:w`
(its samples) and `fg:d` (depth, root 0) in the FG_NS namespace; the
script places frames from those.  Rect widths are fg:w / total * (width -
2 * XPAD) pixels, written with two decimals.

Narrow frames: a node narrower than min_width pixels (default 0.1, as
flamegraph.pl's --minwidth) is omitted together with all its descendants
(which are no wider).  Its samples still count in its ancestors, so every
drawn width stays exact and the omitted frame shows as a gap above its
parent where it would have been; the omitted frames are not searchable and
do not reappear on zoom (flamegraph.pl behaves the same way).

Colours: warm ("hot" palette: red-orange-yellow), from a SHA-1 of the name,
so one function has one colour in every graph.  inverted=True draws an
icicle graph (root at the top) instead.

The embedded script (our own): click a frame to zoom into it (it fills the
width, its ancestors are shown full width and faded, unrelated frames are
hidden); "Reset Zoom" or Escape to zoom out; "Search" or Ctrl-F prompts for
a JavaScript regular expression, colours matching frames magenta and shows
the share of all samples under a match (nested matches counted once);
clicking "Reset Search" clears it.  Hovering a frame shows its tooltip text
in the details line at the bottom.

Everything taken from the input is XML-escaped, and characters XML does not
allow become '?'.  The output depends only on the input: same samples, same
bytes.  Pure: no I/O.
"""
from __future__ import annotations

import hashlib
import math
import re

from probes.folded import merge

FG_NS = "http://unik.dev/ns/flamegraph"
XPAD = 10               # pixels left and right of the plot
ROOT = "all"            # the root frame's name
SEARCH_FILL = "rgb(230,0,230)"
CHAR_WIDTH = 0.59       # estimated label glyph width, as a share of font size

_XML_BAD = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_escape(s: str) -> str:
    """s made safe as XML text and as a double- or single-quoted attribute."""
    s = _XML_BAD.sub("?", str(s))
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def color(name: str) -> str:
    """The frame's fill: a warm rgb() picked by hashing its name."""
    h = hashlib.sha1(name.encode("utf-8", "surrogatepass")).digest()
    v1, v2, v3 = h[0] / 255, h[1] / 255, h[2] / 255
    return f"rgb({205 + int(50 * v3)},{int(230 * v1)},{int(55 * v2)})"


def label(name: str, width_px: float, font_size: float) -> str:
    """The text shown in a frame width_px wide: the name, cut with ".." when
    it does not fit, or nothing under three characters' room.  The script's
    fg_fit() computes the same after a zoom."""
    room = math.floor((width_px - 6) / (font_size * CHAR_WIDTH))
    if room < 3:
        return ""
    if len(name) > room:
        return name[:room - 2] + ".."
    return name


class Node:
    """One stack prefix: its last frame's name, the samples under it, and
    the prefixes one frame longer, by name."""
    __slots__ = ("name", "count", "children")

    def __init__(self, name: str):
        self.name = name
        self.count = 0
        self.children: dict = {}


def build_tree(samples) -> Node:
    """The prefix tree of samples (sanitised and merged by folded.merge)."""
    root = Node(ROOT)
    for frames, count in merge(samples):
        root.count += count
        node = root
        for f in frames:
            child = node.children.get(f)
            if child is None:
                child = node.children[f] = Node(f)
            child.count += count
            node = child
    return root


def layout(root: Node, plot_width: float, min_width: float) -> list:
    """The drawn frames as (node, x in samples, depth), parents before
    children, siblings in name order; nodes under min_width pixels are left
    out with their subtrees."""
    if root.count == 0:
        return []
    scale = plot_width / root.count
    out = []
    stack = [(root, 0, 0)]
    while stack:
        node, x, depth = stack.pop()
        out.append((node, x, depth))
        kids = []
        cx = x
        for name in sorted(node.children):
            child = node.children[name]
            if child.count * scale >= min_width:
                kids.append((child, cx, depth + 1))
            cx += child.count
        stack.extend(reversed(kids))
    return out


def _frame(node, x, depth, geo) -> str:
    """The <g> of one frame."""
    total, scale, fh, fs, y_of = geo
    px = XPAD + x * scale
    pw = node.count * scale
    y = y_of(depth)
    pct = 100.0 * node.count / total
    name = xml_escape(node.name)
    text = xml_escape(label(node.name, pw, fs))
    return (f'<g class="frame" fg:x="{x}" fg:w="{node.count}" fg:d="{depth}">'
            f'<title>{name} ({node.count} samples, {pct:.2f}%)</title>'
            f'<rect x="{px:.2f}" y="{y:.1f}" width="{pw:.2f}" '
            f'height="{fh - 1:.1f}" fill="{color(node.name)}" rx="2" ry="2"/>'
            f'<text x="{px + 3:.2f}" y="{y + fh - 4.5:.1f}">{text}</text></g>\n')


def render_svg(samples, title: str = "Flame Graph", width: int = 1200, *,
               subtitle: str = "", frame_height: int = 16,
               font_size: float = 12, min_width: float = 0.1,
               inverted: bool = False) -> str:
    """The whole SVG document for samples (see the module doc).  width is
    the image width in pixels; min_width (pixels) the narrowest frame drawn;
    inverted draws an icicle graph.  ValueError on a bad sample (as
    folded.merge) or a width too small to draw in."""
    plot_width = width - 2 * XPAD
    if plot_width <= 0 or frame_height <= 1 or font_size <= 0:
        raise ValueError(f"width {width}, frame_height {frame_height}, font_size "
                         f"{font_size}: nothing can be drawn at that size")
    root = build_tree(samples)
    frames = layout(root, plot_width, min_width)
    depth = max((d for _, _, d in frames), default=0) + 1
    top = font_size * 3 + (font_size * 1.5 if subtitle else 0)
    bottom = font_size * 2 + 10
    height = top + depth * frame_height + bottom
    if inverted:
        def y_of(d):
            return top + d * frame_height
    else:
        def y_of(d):
            return top + (depth - 1 - d) * frame_height
    scale = plot_width / root.count if root.count else 0.0
    geo = (root.count, scale, frame_height, font_size, y_of)
    out = [_header(width, height, font_size, title, subtitle)]
    out.append('<g id="frames">\n')
    out.extend(_frame(n, x, d, geo) for n, x, d in frames)
    out.append("</g>\n")
    if not frames:
        out.append(f'<text class="msg" x="{width / 2:.1f}" y="{top + font_size:.1f}" '
                   'text-anchor="middle">No samples</text>\n')
    out.append(_controls(width, height, font_size))
    out.append(_script(plot_width, root.count, font_size))
    out.append("</svg>\n")
    return "".join(out)


def _header(width, height, font_size, title, subtitle) -> str:
    """XML declaration, the <svg> element, styles, background and titles."""
    sub = ""
    if subtitle:
        sub = (f'<text class="sub" x="{width / 2:.1f}" y="{font_size * 3.5:.1f}" '
               f'text-anchor="middle">{xml_escape(subtitle)}</text>\n')
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        f'<svg version="1.1" width="{width}" height="{height:.0f}" '
        f'viewBox="0 0 {width} {height:.0f}" xmlns="http://www.w3.org/2000/svg" '
        f'xmlns:fg="{FG_NS}">\n'
        '<style type="text/css">\n'
        f'text {{ font-family: Verdana, sans-serif; font-size: {font_size}px; '
        'fill: rgb(0,0,0); }\n'
        '.frame { cursor: pointer; }\n'
        '.frame:hover rect { stroke: rgb(0,0,0); stroke-width: 0.5; }\n'
        '.parent rect { opacity: 0.5; }\n'
        '.button { cursor: pointer; fill: rgb(30,30,160); }\n'
        f'.title {{ font-size: {font_size * 1.4:.0f}px; }}\n'
        '</style>\n'
        f'<rect x="0" y="0" width="{width}" height="{height:.0f}" '
        'fill="rgb(250,245,235)"/>\n'
        f'<text class="title" x="{width / 2:.1f}" y="{font_size * 2:.1f}" '
        f'text-anchor="middle">{xml_escape(title)}</text>\n' + sub)


def _controls(width, height, font_size) -> str:
    """The Reset Zoom and Search buttons, the match share and the details line."""
    right = width - XPAD
    return (
        f'<text id="unzoom" class="button" x="{XPAD}" y="{font_size * 2:.1f}" '
        'style="opacity: 0">Reset Zoom</text>\n'
        f'<text id="search" class="button" x="{right}" y="{font_size * 2:.1f}" '
        'text-anchor="end">Search</text>\n'
        f'<text id="matched" x="{right}" y="{height - font_size / 2 - 4:.1f}" '
        'text-anchor="end"> </text>\n'
        f'<text id="details" x="{XPAD}" y="{height - font_size / 2 - 4:.1f}"> </text>\n')


def _script(plot_width, total, font_size) -> str:
    """The configuration and the interaction script, in CDATA."""
    conf = (f"var fg_conf = {{ns: \"{FG_NS}\", xpad: {XPAD}, plotw: {plot_width}, "
            f"total: {total}, charw: {font_size * CHAR_WIDTH!r}, "
            f"searchFill: \"{SEARCH_FILL}\"}};\n")
    return ('<script type="text/ecmascript"><![CDATA[\n"use strict";\n' + conf + _JS
            + "fg_init();\n]]></script>\n")


# The interaction script.  It must never contain the CDATA terminator.
_JS = r"""
var fg = {frames: [], zoomed: null, term: null};

// Index the frames, wire up clicks, hovers, buttons and keys.
function fg_init() {
  var gs = document.getElementById("frames").getElementsByTagName("g");
  for (var i = 0; i < gs.length; i++) fg_index(gs[i]);
  document.getElementById("unzoom").addEventListener("click", fg_unzoom);
  document.getElementById("search").addEventListener("click", fg_search_prompt);
  window.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && (e.key === "f" || e.key === "F")) {
      e.preventDefault();
      fg_search_prompt();
    } else if (e.key === "Escape") {
      fg_unzoom();
    }
  });
}

// Read one frame's position (in samples) and name, and attach handlers.
function fg_index(g) {
  var ns = fg_conf.ns;
  var tip = g.getElementsByTagName("title")[0].textContent;
  var f = {g: g, x: +g.getAttributeNS(ns, "x"), w: +g.getAttributeNS(ns, "w"),
           d: +g.getAttributeNS(ns, "d"), name: tip.substring(0, tip.lastIndexOf(" (")),
           rect: g.getElementsByTagName("rect")[0],
           text: g.getElementsByTagName("text")[0]};
  f.fill = f.rect.getAttribute("fill");
  fg.frames.push(f);
  g.addEventListener("click", function () { fg_zoom(f); });
  g.addEventListener("mouseover", function () { fg_details(tip); });
  g.addEventListener("mouseout", function () { fg_details(" "); });
}

function fg_details(s) {
  document.getElementById("details").textContent = s;
}

// Cut a frame's label to w pixels; the same rule as flamegraph.py's label().
function fg_fit(f, w) {
  var room = Math.floor((w - 6) / fg_conf.charw);
  var s = f.name;
  if (room < 3) s = "";
  else if (s.length > room) s = s.substring(0, room - 2) + "..";
  f.text.textContent = s;
}

// Draw frame f for a view showing samples [x0, x0 + w0) across the plot.
function fg_place(f, x0, w0) {
  var scale = fg_conf.plotw / w0;
  var x = fg_conf.xpad + (f.x - x0) * scale, w = f.w * scale;
  f.rect.setAttribute("x", x.toFixed(2));
  f.rect.setAttribute("width", w.toFixed(2));
  f.text.setAttribute("x", (x + 3).toFixed(2));
  fg_fit(f, w);
}

// Zoom into z: it and its descendants fill the width, its ancestors are
// drawn full width and faded, every other frame is hidden.
function fg_zoom(z) {
  fg.zoomed = z;
  for (var i = 0; i < fg.frames.length; i++) {
    var f = fg.frames[i];
    var under = f.d >= z.d && f.x >= z.x && f.x + f.w <= z.x + z.w;
    var over = f.d < z.d && f.x <= z.x && f.x + f.w >= z.x + z.w;
    f.g.style.display = under || over ? "" : "none";
    if (over) {
      f.g.setAttribute("class", "frame parent");
      fg_place(f, f.x, f.w);
    } else if (under) {
      f.g.setAttribute("class", "frame");
      fg_place(f, z.x, z.w);
    }
  }
  document.getElementById("unzoom").style.opacity = "1";
}

// Back to the whole graph.
function fg_unzoom() {
  fg.zoomed = null;
  for (var i = 0; i < fg.frames.length; i++) {
    var f = fg.frames[i];
    f.g.style.display = "";
    f.g.setAttribute("class", "frame");
    fg_place(f, 0, fg_conf.total);
  }
  document.getElementById("unzoom").style.opacity = "0";
}

// Samples covered by a set of [start, end) spans, overlaps counted once.
function fg_union(spans) {
  spans.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });
  var sum = 0, end = -1;
  for (var i = 0; i < spans.length; i++) {
    var s = spans[i];
    if (s[0] >= end) { sum += s[1] - s[0]; end = s[1]; }
    else if (s[1] > end) { sum += s[1] - end; end = s[1]; }
  }
  return sum;
}

// Highlight the frames whose name matches the regular expression term
// (null clears) and show the share of all samples under a match.
function fg_search(term) {
  var re = null;
  if (term !== null) {
    try { re = new RegExp(term); }
    catch (e) { fg_details("bad regular expression: " + e.message); return; }
  }
  var spans = [];
  for (var i = 0; i < fg.frames.length; i++) {
    var f = fg.frames[i];
    var hit = re !== null && re.test(f.name);
    f.rect.setAttribute("fill", hit ? fg_conf.searchFill : f.fill);
    if (hit) spans.push([f.x, f.x + f.w]);
  }
  fg.term = re === null ? null : term;
  document.getElementById("search").textContent = re === null ? "Search" : "Reset Search";
  var pct = fg_conf.total ? 100 * fg_union(spans) / fg_conf.total : 0;
  document.getElementById("matched").textContent =
    re === null ? " " : "Matched: " + pct.toFixed(2) + "%";
}

// The Search button and Ctrl-F: prompt for a term, or clear the search.
function fg_search_prompt() {
  if (fg.term !== null) { fg_search(null); return; }
  var t = window.prompt("Search frames (regular expression):", "");
  if (t) fg_search(t);
}
"""
