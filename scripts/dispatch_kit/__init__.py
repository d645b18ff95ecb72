"""dispatch-kit: the four dispatch patterns as skills, templates and checks a machine can run."""

__version__ = "0.1.0"
