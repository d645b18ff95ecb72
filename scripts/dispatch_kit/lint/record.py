"""Named tuples declared the way ``typing.NamedTuple`` declares them, without importing typing.

Importing ``typing`` (and the contextlib it pulls in) was about a tenth of a
one-prompt lint's cold start, and the linter's only runtime use of it was
``NamedTuple``. ``Record`` builds the same thing from the class body:
annotated names are the fields, values are their defaults, methods and
properties stay on the class. Type checkers see ``typing.NamedTuple`` itself.

``TYPE_CHECKING`` is exported for modules that import names only for their
annotations: type checkers treat a variable of that name as true, and at run
time it is false, so ``typing`` is never loaded.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:

    class _RecordMeta(type):
        def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, object]):
            if not bases:  # Record itself
                return super().__new__(mcls, name, bases, namespace)
            fields = list(namespace.get("__annotations__", {}))
            if not fields:
                raise TypeError(f"{name}: a Record needs annotated fields")
            defaults = [namespace[field] for field in fields if field in namespace]
            first_default = len(fields) - len(defaults)
            if any(field not in namespace for field in fields[first_default:]):
                raise TypeError(f"{name}: fields without a default must come first")
            base = namedtuple(  # noqa: PYI024 - built from annotations, typed as NamedTuple
                name, fields, defaults=defaults, module=str(namespace.get("__module__"))
            )
            body = {key: value for key, value in namespace.items() if key not in fields}
            body["__slots__"] = ()
            return type(name, (base,), body)

    class Record(metaclass=_RecordMeta):
        """Base class: ``class Finding(Record): path: str; line: int = 1``."""

__all__ = ["TYPE_CHECKING", "Record"]
