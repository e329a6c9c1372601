"""The credentials ``kiosk run`` reads as it starts, checked as it reads them: by ``kiosk run``
itself before it opens anything, and by ``kiosk check-config`` where the daemon will be handed
them (``checkpoint.cli.config_cmd``). A problem here is one no restart mends (exit 2, so that
kiosk.service stops with the line in ``systemctl status``): the file must be put right by hand.
The TLS pair is checked apart, loaded as the server loads it (``kiosk.tlscert``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from kiosk.accounts import AccountError, AccountStore
from kiosk.secrets import SecretError, empty_key, get_key, get_secret, short_screen_key
from kiosk.tokens import secret_pepper, short_pepper

#: The errors a credential ``kiosk run`` cannot use raises (``CREDENTIAL_CHECKS``).
CredentialError = (SecretError, AccountError)


def _guard_users(environ: Mapping[str, str]) -> object:
    return AccountStore.from_secrets(environ=environ)


#: Each credential the daemon reads at start, read as it reads it (the same calls): the API
#: tokens' pepper, the guard console's cookie key and accounts, the screens' pairing key and
#: the on-the-spot issuing key's path (only whether it is text: a key it names that is no key
#: is the guard's Passes page's, never a refusal to start).
CREDENTIAL_CHECKS: dict[str, Callable[[Mapping[str, str]], object]] = {
    "token_pepper": secret_pepper,
    "session_key": lambda environ: get_key("session_key", environ),
    "guard_users": _guard_users,
    "screen_key": lambda environ: get_secret("screen_key", environ),
    "issuer_key_path": lambda environ: get_secret("issuer_key_path", environ),
}


def credential_problems(
    environ: Mapping[str, str], names: tuple[str, ...] = tuple(CREDENTIAL_CHECKS)
) -> list[str]:
    """What ``kiosk run`` refuses of the credentials ``names`` in ``environ``
    (``$CREDENTIALS_DIRECTORY``, ``KIOSK_NAME``: ``kiosk.secrets``), one line each, naming
    the credential and never its value; [] when it takes them all."""
    problems = []
    for name in names:
        try:
            CREDENTIAL_CHECKS[name](environ)
        except CredentialError as exc:
            problems.append(str(exc))
    return problems


#: What the daemon warns of a credential it takes, or ignores (a short screen_key), in the
#: journal at each start and by check-config.
CREDENTIAL_WARNINGS: dict[str, Callable[[Mapping[str, str]], str | None]] = {
    "token_pepper": short_pepper,
    "session_key": lambda environ: empty_key("session_key", environ),
    "screen_key": short_screen_key,
}


def credential_warnings(
    environ: Mapping[str, str], names: tuple[str, ...] = tuple(CREDENTIAL_CHECKS)
) -> list[str]:
    """The warnings of the credentials ``names`` in ``environ`` it takes, one line each,
    naming the credential and never its value (one it refuses: ``credential_problems``)."""
    warnings = []
    for name in names:
        if name not in CREDENTIAL_WARNINGS:
            continue
        try:
            said = CREDENTIAL_WARNINGS[name](environ)
        except CredentialError:
            continue
        if said:
            warnings.append(said)
    return warnings
