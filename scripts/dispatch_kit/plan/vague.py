"""Tell a shell command from prose that only looks like an exit criterion.

An exit criterion is the quality gate of a dispatched task: the orchestrator
runs it and approves, retries or fails the task on its exit status. A line such
as "tests pass" or "make sure the docs are good" cannot be run, so a plan that
contains one has no gate at all. The validator rejects such lines; this module
holds the rule, kept deterministic (it never asks the machine which programs
are installed, so a plan validates the same on a laptop and in CI).

The rule, in order:

1. An empty line, or one that is only a ``#`` comment, is not a command.
2. If every whitespace-separated word is a plain English word (letters, an
   inner hyphen or apostrophe, an optional trailing ``. , ! ?``) or a bare
   number, the line has nothing that marks it as shell: no option, path,
   quote, operator, redirection, variable or file name. Such a line is prose
   when it opens with "make sure", and otherwise:

   - if its first word is a common program or builtin (echo, make, test,
     npm ...): when two or more of the words listed below appear ("test that
     it works"), so that ``echo a`` and ``make all`` stay commands;
   - for any other first word, when one of these holds: the first word is
     capitalised ("Tests pass", "README exists"); a word carries sentence
     punctuation or an apostrophe ("works.", "it's"); it opens with an
     instruction to a person (run, check, verify, ensure ...); it contains an
     English function word (the, is, are, should, that ...) or a word that
     states an outcome instead of testing it (pass, works, compiles, done,
     good, correct ...).

   Otherwise it is a short bare command and is accepted: ``make test``,
   ``pytest``, ``cargo check``, ``npm test``, ``tox``.
3. The first command word (after ``NAME=value`` assignments, ``!``, ``(``,
   ``{`` and a leading redirection) must look like something a shell can run:
   a shell keyword or builtin, ``[`` / ``[[``, a path containing ``/``, a
   ``$variable``, or a program name (letters, digits, ``_ . + -``, not
   starting with ``-``). A quoted sentence such as ``"tests pass"`` fails
   here, as does an unclosed quote.

Anything marked as shell by one token (an option like ``-q``, a pipe, a file
name like ``x.py``, a quote) passes rule 2, so the escape hatch for an unusual
but real command is to quote its arguments: ``echo 'the end'``.
"""

from __future__ import annotations

import re
import shlex

# Words that make a line of bare words read as English rather than as a
# program and its arguments. Real short commands (make all, make clean, npm
# test, cargo build) avoid them; keep that in mind before adding one.
FUNCTION_WORDS = frozenset(
    """
    a an the this that these those it its they them their there here we our you your i me my
    he she is are was were be been being am do does did has have had should must will would
    can could shall may might and or but not no nor of to in on at for with without from into
    by as than then so if when whether which who what how sure properly correctly successfully
    really actually also only every each both
    """.split()
)
OUTCOME_WORDS = frozenset(
    """
    pass passes passed passing work works worked working compiles compiled builds succeeds
    succeeded success successful complete completed done finished exists exist present green
    valid looks good fine correct ok okay nice great documented implemented tested reviewed
    approved updated fixed ready
    """.split()
)
# Opening verbs of an instruction to a person; none is a standard program.
INSTRUCTION_VERBS = frozenset(
    "run check verify ensure confirm validate review inspect look see".split()
)
SHELL_WORDS = frozenset(
    """
    ! [ [[ { ( (( . : alias bg break case cd command continue echo eval exec exit export false
    fg for getopts hash if jobs kill local printf pwd read readonly return set shift test
    time times trap true type ulimit umask unalias unset until wait while
    """.split()
)

# Programs and builtins so common that a line starting with one is a command unless the rest
# reads as a sentence twice over ("test that it works").
KNOWN_PROGRAMS = SHELL_WORDS | frozenset(
    """
    awk bash cargo cat cmp diff docker env find git go grep ls make node npm npx pnpm pytest
    python python3 ruff sed sh sleep tox wc yarn
    """.split()
)

_PLAIN_WORD = re.compile(r"^[A-Za-z]+(?:[-'][A-Za-z]+)*[.,!?]?$")
_NUMBER = re.compile(r"^\d+$")
# A code identifier in a sentence ("docs for from_csv are complete") is still prose.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*[.,!?]?$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PROGRAM = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_REDIRECTION = re.compile(r"^[0-9]*[<>][<>&|]?$")


def vague_reason(command: str) -> str | None:
    """Why ``command`` is not a runnable shell command, or None when it is one."""
    stripped = command.strip()
    if not stripped:
        return "it is empty"
    if stripped.startswith("#"):
        return "it is only a comment"
    prose = _prose_reason(stripped)
    if prose:
        return prose
    return _first_word_reason(stripped)


def _prose_reason(text: str) -> str | None:
    words = text.split()
    if not all(_PLAIN_WORD.match(w) or _NUMBER.match(w) or _IDENTIFIER.match(w) for w in words):
        return None  # an option, path, quote, operator or file name: shell syntax
    bare = [w.rstrip(".,!?").lower() for w in words]
    if bare[:2] == ["make", "sure"]:
        return "it reads like an instruction to a person ('make sure')"
    signals = [w for w in bare if w in FUNCTION_WORDS or w in OUTCOME_WORDS]
    if words[0] in KNOWN_PROGRAMS:
        # `echo a`, `make all`, `test it`: one English-looking argument is not a sentence.
        if len(signals) >= 2:
            return f"it reads like a sentence ('{signals[0]}', '{signals[1]}')"
        return None
    if words[0][:1].isupper():
        return "it reads like a sentence (capitalised first word)"
    if any(w[-1] in ".,!?" or "'" in w for w in words):
        return "it reads like a sentence (punctuation)"
    if bare[0] in INSTRUCTION_VERBS:
        return f"it reads like an instruction to a person ('{words[0]}')"
    if signals:
        if signals[0] in OUTCOME_WORDS:
            return f"it states an outcome ('{signals[0]}') instead of testing for it"
        return f"it reads like a sentence ('{signals[0]}')"
    return None


# shlex builds each token a character at a time, in time quadratic in its
# length: a 1 MB criterion of "(((" took minutes. Longer commands are not
# tokenised (no person writes one; a generated one is not prose either).
MAX_TOKENISED = 16 * 1024


def _first_word_reason(text: str) -> str | None:
    if "<<" in text or len(text) > MAX_TOKENISED:
        return None  # a here-document body is not shell-quoted text; do not tokenise it
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        return f"it is not valid shell ({str(exc).lower()})"
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if _ASSIGNMENT.match(token) or token in ("!", "(", "{"):
            index += 1
        elif _REDIRECTION.match(token):
            index += 2  # the operator and its target
        else:
            break
    if index >= len(tokens):
        return None  # only assignments or redirections: odd but valid shell
    first = tokens[index]
    if first in SHELL_WORDS or "/" in first or first.startswith("$") or _PROGRAM.match(first):
        return None
    return f"it does not start with a command (first word {first!r})"
