"""The fast frontmatter reader agrees with PyYAML's C loader on every text it answers for.

``frontmatter._simple`` parses common skill and agent frontmatter without
importing PyYAML. It may leave any text to PyYAML (return None), but when it
answers, with a value or a FrontmatterError, the answer must be exactly the
one ``frontmatter._parse_with_yaml`` gives. The expected results here always
come from PyYAML, never from the fast reader itself.
"""

from __future__ import annotations

import random

import pytest

from dispatch_kit.lint import frontmatter
from dispatch_kit.lint.frontmatter import Frontmatter, FrontmatterError

yaml = pytest.importorskip("yaml")
if not hasattr(yaml, "CSafeLoader"):
    pytest.skip("the fast reader mirrors libyaml, which this PyYAML lacks", allow_module_level=True)

FIRST_LINE = 2  # where split() puts the first YAML line: right after "---"


def with_yaml(text: str) -> tuple:
    """PyYAML's answer for ``text``: ("ok", value) or ("error", message, line, column)."""
    try:
        return ("ok", frontmatter._parse_with_yaml(Frontmatter(text, FIRST_LINE, 0, 0)))
    except FrontmatterError as exc:
        return ("error", exc.message, exc.line, exc.column)


def fast(text: str) -> tuple | None:
    """The fast reader's answer for ``text`` in the same shape, or None when it defers."""
    try:
        value = frontmatter._simple(text, FIRST_LINE)
    except FrontmatterError as exc:
        return ("error", exc.message, exc.line, exc.column)
    return None if value is None else ("ok", value)


def same(a: tuple, b: tuple) -> bool:
    # repr tells True from 1 and 1.0 from 1, which == does not
    return a == b and repr(a) == repr(b)


# -- values the fast reader must read itself ---------------------------------------------------

FAST = [
    # quoted scalars, top level
    "name: notes\ndescription: 'Quoted.'\n",
    'description: "Takes notes: use when a meeting ends. # not a comment"\n',
    "description: 'It''s a \"skill\"' # a comment\n",
    'description: "tab\\there, slash\\/, quote\\", backslash\\\\, newline\\n"\n',
    "description: ''\nname: \"\"\n",
    "description: '[not, a, list]'\n",
    "description: \"yes\"\nversion: '1.0'\n",
    # quoted scalars, nested and as items
    "metadata:\n  owner: 'docs team'\n  tag: \"a: b\"\n",
    "allowed-tools:\n  - 'Read'\n  - \"Bash(git add:*)\"\n  - Grep\n",
    # flow sequences
    "allowed-tools: [Read, Edit, Grep]\n",
    "tools: []\n",
    "tools: [ ]  # none yet\n",
    "allowed-tools: [Read, 'Bash(git status:*)', \"Web Fetch\", Bash(git add:*)]\n",
    "metadata:\n  tags: [docs, notes]\n  owner: me\n",
    "matrix:\n  - [a, b]\n  - []\n",
    "mcpServers: {}\nhooks: { }\n",
    # comments
    "# a comment\nname: notes # trailing\n\n  # indented comment\ndescription: Takes notes.\n",
    "metadata: # the owner\n  owner: docs\n# between\n  team: core\n",
    # nulls, numbers-like strings, odd but plain text
    "name: notes\nargument-hint:\n",
    "version: 1.2.0\nmodel: inherit\n",
    "description: Use when x; y is a:b and c#d, (e) [f] {g}.\n",
    "description: caf\xe9 \u65e5\u672c \U0001f600\n",
    # CRLF line ends
    "name: notes\r\ndescription: 'Quoted.'\r\ntools: [Read]\r\n",
]


@pytest.mark.parametrize("text", FAST)
def test_fast_reader_reads_common_frontmatter_as_pyyaml_does(text):
    assert frontmatter._simple(text) is not None, "the fast path was not taken"
    expected = yaml.load(text, Loader=yaml.CSafeLoader)  # noqa: S506 - a safe loader
    assert same(("ok", frontmatter._simple(text)), ("ok", expected))


DEFERRED = [
    "description: |\n  Block text.\n",
    "description: >-\n  Folded.\n",
    "anchor: &a x\nalias: *a\n",
    "tag: !!str x\n",
    "count: 3\nenabled: true\nnothing: null\n",
    "true: x\n",  # a key PyYAML reads as a boolean
    "n: 0b101\n",  # binary int
    "f: 1._5\n",  # float with an underscore after the point
    "v: =\n",  # PyYAML's "value" tag, which SafeLoader cannot construct
    "m: <<\n",  # the merge tag
    "tools: [Read, 1]\n",
    "tools: [a, [b]]\n",
    "tools: [a,,b]\n",
    "tools: [a, b,]\n",
    "tools: {a: b}\n",
    'description: "\\x41"\n',  # escapes beyond the supported few
    "description: 'two\n  lines'\n",
    "name: a\nname: b\n",  # duplicate keys
    "name: a\n\t\nb: c\n",  # a tab
    "name: a\x0cb: c\n",  # a control character
    "name: a\x85b: c\n",  # NEL, a YAML line break
    "description: a\u2028b\n",  # the line separator: libyaml breaks the line there
    "k: \u2029\n",  # the paragraph separator
    "k: x # c\u2028y: z\n",
    "name: a\n\xa0\n",  # no-break space is content, not blank
    "- a\n- b\n",
    "metadata:\n  deeper:\n    x: y\n",
    "metadata:\n  a: b\n - c\n",
]


@pytest.mark.parametrize("text", DEFERRED)
def test_fast_reader_defers_what_it_does_not_follow(text):
    assert frontmatter._simple(text) is None


# -- broken frontmatter ------------------------------------------------------------------------

BROKEN = [
    # the benchmark corpus's broken skill: a second metadata key, left open
    "name: s\nmetadata:\n  category: c\n  owner: o\nallowed-tools:\n  - Edit\n"
    "metadata: {category: [unclosed\n",
    "name: s\nmetadata: {category: [unclosed",  # no final line break
    "name: s\ntools: [Read, Edit\n\n  \n",
    "name: s\nmetadata: {a: b, c: [d, e\n",
    "name: s\nmetadata: [a, {b: c, d\n",
    "name: s\nmetadata: {a\n",
    "name: s\nmetadata:\n  tags: [a, b\n",
    "name: s\nlist:\n  - [a\n",
    # the benchmark corpus's broken agent: a duplicate key with a second ":"
    "name: a\ndescription: Use it.\ntools: Read\ndescription: : broken: [\n",
    "name: a\nmetadata:\n  owner: : x\n",
]


@pytest.mark.parametrize("text", BROKEN)
def test_fast_reader_raises_the_error_pyyaml_raises(text):
    expected = with_yaml(text)
    assert expected[0] == "error"
    assert fast(text) == expected


def test_unclosed_flow_error_names_the_innermost_bracket():
    for text, closing in (("k: {a: [b\n", "]"), ("k: [a, {b\n", "}")):
        assert fast(text) == with_yaml(text)
        assert fast(text)[1].endswith(f"did not find expected ',' or '{closing}'")


def test_parse_reports_file_lines_for_fast_errors():
    text = "name: s\nmetadata: {category: [unclosed\n"
    fm = Frontmatter(text, 5, 0, 0)
    with pytest.raises(FrontmatterError) as fast_error:
        frontmatter.parse(fm)
    with pytest.raises(FrontmatterError) as yaml_error:
        frontmatter._parse_with_yaml(fm)
    got, want = fast_error.value, yaml_error.value
    assert (got.message, got.line, got.column) == (want.message, want.line, want.column)


def test_open_flow_not_at_the_end_is_left_to_pyyaml():
    assert frontmatter._simple("k: [a\n# after\n") is None
    assert frontmatter._simple("k: [a\nname: b\n") is None
    assert frontmatter._simple("k: {" + "x" * 1100 + ": [a\n") is None  # libyaml's key limit


# -- plain scalars -----------------------------------------------------------------------------


def test_plain_strings_are_strings_to_pyyaml():
    """Whatever _plain calls a string, PyYAML's resolver must resolve as one."""
    resolver = yaml.resolver.Resolver()
    rng = random.Random(7)
    pieces = ["0", "1", "7", "9", "_", ".", "-", "+", ":", "e", "E", "x", "b", "o", "a", "n",
              "y", "inf", "nan", "NaN", "true", "no", "null", "~", "=", "<", "<<", " ", "T",
              "Z", "2024-", "01-", "10:30", "\u0663"]  # fmt: skip
    for _ in range(20000):
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 5)))
        if frontmatter._plain(value):
            tag = resolver.resolve(yaml.ScalarNode, value, (True, False))
            assert tag == "tag:yaml.org,2002:str", value


# -- differential fuzzing ----------------------------------------------------------------------

GOOD_KEYS = ["name", "description", "tools", "allowed-tools", "metadata", "model", "k-1", "x_y"]
GOOD_KEYS += [f"key{i}" for i in range(30)]
BAD_KEYS = ["true", "null", "on", "y", "No", "_x", "e5", "a b", "'q'", '"q"', "key ", "\xdcn",
            "k" * 1030, "-k", "? k"]  # fmt: skip
GOOD_PLAIN = ["notes", "Use when x.", "a:b", "a#b", "1.2.0", "Read, Grep", "Bash(git add:*)",
              "x\xa0", "\xe9", "\u65e5\u672c", "a  b", "inherit", "12abc", "\u0663",
              "\U0001f600 ok", "a :b", "a'b", "a[b]", "e", "a ... b", "a\\b", 'a"b']  # fmt: skip
BAD_PLAIN = ["a: b", "a #b", "b:", "1", "1.0", "0b1", "1._5", "0x1F", "0o7", "017", "1:30",
             "190:20:30.15", "2024-01-01", "2024-1-1 10:00:00", "2024-13-45", "true", "yes",
             "OFF", "y", "~", "null", "=", "<<", "<", "-x", "- x", "-", "?x", ":x", ": x", "&a",
             "*a", "!t", "!!str x", "|", "|-", ">", "%x", "@x", "`x", ",a", "\xa0", ".", ".inf",
             ".nan", "-.inf", "+1", "_", "e5", "1e5", "1e+5", "1_000", "---", "...", "a{b}",
             "a,b", "a\tb", "x #", "a:", "#x", "[a]", "{a: b}", "'a", '"a', "a'"]  # fmt: skip
GOOD_QUOTED = ["a", " ", ":", ": ", "#", " #", "[", "]", ",", "\xe9", "x y", "{", "&", "!"]
BAD_QUOTED = ["\\x41", "\\u00e9", "\\0", "\\ ", "\\", "\t", "\\e", "\\N", '"', "'", "\\\t"]
GOOD_ITEMS = ["Read", "Edit", "Grep", "Bash", "a b", "Bash(x:*)", "\xe9", "a.b", "1.2.0"]
BAD_ITEMS = ["", " ", "[b]", "{a: b}", "a: b", "a:", "a:b", "a:*", "a :", "#x", "a#b", "&a",
             "-", "- a", "?", "a?b", "1", "true", "~", "a'b", "-a", "a:,", "x\t"]  # fmt: skip
WORDS = ["a", "b c", "unclosed", "1", "x_y", "true"]
BAD_WORDS = ["-", "'q'", "#", "\xe9", "a  b", "", "a:b", "*a", "?"]
ODD_LINES = ["\t", "---x", "--- x", "- top", "key", ": x", "\ufeffname: x", "\x0c",
             "a\x85b: c", "a\u2028b: c", "...", "%YAML 1.1", "  continued", "? k", "a:b", "\xa0",
             "x: y\x00", "x: \ud800", "x: \x7f", "x: y\x0bz", "x: \ufeff", "&a x: y", "x: *a",
             "x: \r"]  # fmt: skip


class Grammar:
    """Random frontmatter: mostly well-formed pieces, with a per-text rate of bad ones."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.noise = 0.0

    def bad(self) -> bool:
        return self.rng.random() < self.noise

    def pick(self, good: list[str], bad: list[str]) -> str:
        return self.rng.choice(bad if self.bad() else good)

    def quoted(self) -> str:
        quote = self.rng.choice("'\"")
        escapes = ["\\n", "\\t", "\\/", "\\\\", '\\"', "'"] if quote == '"' else ["''", '"', "\\"]
        body = "".join(
            self.pick(GOOD_QUOTED + escapes, BAD_QUOTED) for _ in range(self.rng.randint(0, 5))
        )
        return quote + body + self.pick([quote], ["", quote * 2, quote + "x", quote + ": x"])

    def flow(self) -> str:
        items = [
            self.quoted() if self.rng.random() < 0.3 else self.pick(GOOD_ITEMS, BAD_ITEMS)
            for _ in range(self.rng.randint(0, 4))
        ]
        body = self.pick([", ", ",", " , "], [",,", ", ,", " "]).join(items)
        if self.bad():
            body += self.rng.choice([",", ", ", " "])
        close = self.pick(["]", "] ", "]  # c"], ["]x", "]: y", "] b", "", "]#c", "]]", "}"])
        return "[" + self.rng.choice(["", " "]) + body + close

    def unclosed(self) -> str:
        out = ""
        for _ in range(self.rng.randint(1, 3)):
            if self.rng.random() < 0.5:
                out += "[" + self.rng.choice(["", " "])
                for _ in range(self.rng.randint(0, 2)):
                    out += self.pick(WORDS, BAD_WORDS) + self.pick([", ", ","], [" ", ",,"])
            else:
                out += "{" + self.rng.choice(["", " "])
                for _ in range(self.rng.randint(0, 2)):
                    out += self.pick(WORDS, BAD_WORDS)
                    out += self.rng.choice(["", ": " + self.pick(WORDS, BAD_WORDS)])
                    out += self.pick([", ", ","], [" ", ",,"])
                out += self.pick(WORDS, BAD_WORDS) + self.pick([": ", ":  "], [":", " : ", ""])
        if self.rng.random() < 0.8:
            out += self.pick(WORDS, BAD_WORDS) + self.pick(
                ["", " ", ", x", ": x"], [",", ":", " #"]
            )
        else:
            out += self.rng.choice(["]", "}", "a]", "a}", "a] b", ""])
        return out

    def value(self) -> str:
        roll = self.rng.random()
        if roll < 0.4:
            return self.pick(GOOD_PLAIN, BAD_PLAIN)
        if roll < 0.6:
            return self.quoted()
        if roll < 0.8:
            return self.flow()
        if roll < 0.85 or not self.bad():
            return self.pick(["{}", "{ }", "[ ]", "[]"], ["{a: b}", "{a}", "{,}", "[,]"])
        if roll < 0.9:
            return ": " + self.rng.choice(["x", "", "broken: [", "'q'"])
        return self.unclosed()

    def entry(self, indent: str = "", item: bool = False) -> str:
        if item:
            head = indent + self.pick(["- ", "-  "], ["-", "-\t", "- - "])
        else:
            separator = self.pick([" ", "  "], ["\t", "", " \t"])
            head = indent + self.pick(GOOD_KEYS, BAD_KEYS) + ":" + separator
        comment = self.pick(["", "", " # c", "  # x: y", " #"], ["#c", " #'q", "\t# c"])
        return head + self.value() + comment + self.pick(["", " "], ["\t", "  \t"])

    def nested(self) -> str:
        head = self.pick(GOOD_KEYS, BAD_KEYS) + ":" + self.pick(["", " # c"], [" |", " &a", " >"])
        lines = [head]
        indent = " " * self.rng.choice([1, 2, 2, 4])
        items = self.rng.random() < 0.5
        for _ in range(self.rng.randint(0, 4)):
            width = indent if not self.bad() else " " * self.rng.randint(0, 6)
            lines.append(self.entry(width, items if not self.bad() else not items))
            if self.rng.random() < 0.15:
                lines.append(self.pick(["", "  ", "# c", "    # c"], ["\t", "   \t", "\xa0", " x"]))
        return "\n".join(lines)

    def text(self) -> str:
        self.noise = self.rng.choice([0.0, 0.0, 0.02, 0.05, 0.1, 0.3])
        lines = []
        for _ in range(self.rng.randint(1, 6)):
            roll = self.rng.random()
            if roll < 0.5:
                lines.append(self.entry())
            elif roll < 0.8:
                lines.append(self.nested())
            else:
                lines.append(self.pick(["", "# c", "  # c", "  "], ODD_LINES))
        if self.rng.random() < 0.25:
            lines.append(self.pick(GOOD_KEYS, BAD_KEYS) + ": " + self.unclosed())
            if self.rng.random() < 0.3:
                lines.append(self.rng.choice(["", "  ", "# c", "x: y", "  - z"]))
        text = "\n".join(lines)
        if self.rng.random() < 0.05:
            text = text.replace("\n", "\r\n")
        return text + self.rng.choice(["\n", "\n", "\n", "", "\n\n", "\n  "])


SOUP = ["a", "b", "x y", ":", ": ", " ", "  ", "-", "- ", "#", " #", "'", "''", '"', "\\",
        "\\n", "[", "]", "{", "}", ",", ", ", "1", "true", "\n", "\n", "\n  ", "\n- ", "\nk: ",
        "\n  k: ", "\n  - ", "\xe9", "\xa0", "\t", "?", "&", "*", "!", "|", ">", ".", "~", "=",
        "<<", "_"]  # fmt: skip


def soup(rng: random.Random) -> str:
    """Text with no structure in mind, after a first key: odd token sequences."""
    start = rng.choice(["k: ", "k: [", "k: {", "k: {a: [", "a: b\nk:\n  - "])
    text = start + "".join(rng.choice(SOUP) for _ in range(rng.randint(1, 12)))
    return text + rng.choice(["", "\n"])


def differential(texts: list[str]) -> tuple[int, int]:
    """Check the fast reader against PyYAML on each text; count its values and errors."""
    values = errors = 0
    for text in texts:
        got = fast(text)
        if got is not None:
            expected = with_yaml(text)
            assert same(got, expected), f"{text!r}: fast {got!r}, PyYAML {expected!r}"
            values += got[0] == "ok"
            errors += got[0] == "error"
    return values, errors


def test_fast_reader_matches_pyyaml_on_random_frontmatter():
    grammar = Grammar(seed=20240611)
    values, errors = differential([grammar.text() for _ in range(8000)])
    # the texts reach the fast path often enough, for values and for errors
    assert values > 2000 and errors > 300, (values, errors)


def test_fast_reader_matches_pyyaml_on_token_soup():
    rng = random.Random(11)
    values, errors = differential([soup(rng) for _ in range(8000)])
    assert values > 300 and errors > 50, (values, errors)
