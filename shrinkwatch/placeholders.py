"""`${VAR}` references: how camera URLs and secrets (webhook secrets, Apprise URLs, the SMTP
password, the Twilio token, the single sign-on client secret) are written in the site file,
the settings file and the database. The reference is what is stored, shown and logged; the
value is read from the process's environment when it is used, and kept only in memory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.logs import hide

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
FORM = "a placeholder must read ${NAME} (letters, digits and _; not starting with a digit)"


class UnsetVariable(ShrinkwatchError):
    """A `${VAR}` names an environment variable that this process does not have."""


# Site data (a site file, the dashboard's pages) may name only variables of its own. Naming
# one of Shrinkwatch's settings or libpq's would let whoever edits a camera or a recipient
# have the server send its own secrets (the database password, the single sign-on client
# secret) to an address of their choosing.
RESERVED_PREFIXES = ("SHRINKWATCH_", "PG")


def reserved(template: str) -> list[str]:
    """The variables a text names that site data may not: Shrinkwatch's and PostgreSQL's own."""
    return [name for name in placeholders(template) if name.upper().startswith(RESERVED_PREFIXES)]


def reserved_message(names: list[str]) -> str:
    """What to say of reserved variables named in site data."""
    listed = ", ".join(f"${{{name}}}" for name in dict.fromkeys(names))
    return f"{listed}: Shrinkwatch's own settings and PostgreSQL's (SHRINKWATCH_*, PG*) are not for site data"


def whole_reference(template: str) -> bool:
    """Whether the text is one `${VAR}` and nothing else."""
    return _PLACEHOLDER.fullmatch(template.strip()) is not None


def placeholders(template: str) -> list[str]:
    """The environment variables a text names as `${VAR}`, in order."""
    return _PLACEHOLDER.findall(template)


def well_formed(template: str) -> bool:
    """Whether every `${` in the text opens a `${NAME}` placeholder."""
    return template.count("${") == len(placeholders(template))


def resolve_placeholders(template: str, environ: Mapping[str, str]) -> str:
    """The text with each `${VAR}` replaced from `environ`; KeyError names what is missing."""
    missing = [name for name in placeholders(template) if name not in environ]
    if missing:
        raise KeyError(", ".join(dict.fromkeys(missing)))
    return _PLACEHOLDER.sub(lambda m: environ[m[1]], template)


def resolve_secret(value: str, what: str, environ: Mapping[str, str]) -> str:
    """A secret as it is used now: its `${VAR}` read from `environ` (a value without one, from
    before references were required, is used as it is). The result is for this use only, never
    to store; from now on the log filter shows it as `***`. UnsetVariable names `what` (a
    setting, or a recipient's field) and each variable that is not set."""
    try:
        resolved = resolve_placeholders(value, environ)
    except KeyError as exc:
        names = ", ".join(f"${{{name}}}" for name in exc.args[0].split(", "))
        msg = f"{what} names {names}, not set in this process's environment"
        raise UnsetVariable(msg) from None
    hide(resolved)
    return resolved
