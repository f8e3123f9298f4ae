"""Reading a page's form controls and their labels with the standard library's HTML parser."""

from html.parser import HTMLParser

CONTROLS = {"input", "select", "textarea"}


class _Controls(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.controls = []  # dicts: tag, attrs, options (selects), label (filled later)
        self.labels = {}  # for= id -> text
        self._label = None  # [for, text parts, controls inside]
        self._select = None
        self._option = None
        self._legend = None
        self.legends = []

    def handle_starttag(self, tag, attrs):
        attrs = {name: (value if value is not None else "") for name, value in attrs}
        if tag == "label":
            self._label = [attrs.get("for"), [], []]
        elif tag in CONTROLS:
            control = {"tag": tag, "attrs": attrs, "options": [], "label": None}
            self.controls.append(control)
            if self._label is not None:
                self._label[2].append(control)
            if tag == "select":
                self._select = control
        elif tag == "option" and self._select is not None:
            self._option = [attrs.get("value"), []]
        elif tag == "legend":
            self._legend = []

    def handle_endtag(self, tag):
        if tag == "label" and self._label is not None:
            target, parts, inside = self._label
            text = " ".join("".join(parts).split())
            if target:
                self.labels[target] = text
            for control in inside:
                control["label"] = text
            self._label = None
        elif tag == "option" and self._option is not None:
            self._select["options"].append((self._option[0], " ".join("".join(self._option[1]).split())))
            self._option = None
        elif tag == "select":
            self._select = None
        elif tag == "legend" and self._legend is not None:
            self.legends.append(" ".join("".join(self._legend).split()))
            self._legend = None

    def handle_data(self, data):
        if self._label is not None:
            self._label[1].append(data)
        if self._option is not None:
            self._option[1].append(data)
        if self._legend is not None:
            self._legend.append(data)


def form_controls(html, within=None):
    """The controls of `html` (or of the part starting at the text `within` up to </form>), each
    with the text of its label: a <label for> naming its id, or a <label> around it."""
    if within is not None:
        start = html.index(within)
        html = html[start:html.index("</form>", start) + len("</form>")]
    parser = _Controls()
    parser.feed(html)
    for control in parser.controls:
        control_id = control["attrs"].get("id")
        if control_id and control_id in parser.labels:
            control["label"] = parser.labels[control_id]
    return parser.controls, parser.legends
