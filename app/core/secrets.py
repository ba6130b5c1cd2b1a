"""API keys for remote providers: kept in the OS keyring, never in files.

`HEARTH_<PROVIDER>_API_KEY` in the environment always wins. Keyring backends
that would not keep a key safe (the fail backend, plain-text files) are refused
with a sentence that says how to fix it.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from app.core.errors import HearthError

log = logging.getLogger(__name__)

SERVICE = "hearth"

FIX = ("install and unlock a Secret Service (GNOME Keyring or KWallet; the macOS and Windows "
       "keyrings work as they are), or set {env} instead")


class KeyringUnusableError(HearthError):
    reason = "keyring_unusable"


@dataclass(frozen=True)
class BackendStatus:
    name: str
    usable: bool
    note: str = ""


def env_var(provider: str) -> str:
    """The environment variable that holds `provider`'s key, e.g. HEARTH_GROQ_API_KEY."""
    return "HEARTH_" + re.sub(r"[^A-Z0-9]+", "_", provider.upper()).strip("_") + "_API_KEY"


def _refused(backend: Any) -> str | None:
    """Why this backend may not hold keys, or None when it may."""
    from keyring.backends import chainer, fail

    if isinstance(backend, chainer.ChainerBackend):
        reasons = [_refused(b) for b in backend.backends]
        if backend.backends and any(r is None for r in reasons):
            return None
        return next((r for r in reasons if r), "no OS keyring was found")
    if isinstance(backend, fail.Keyring):
        return "no OS keyring was found"
    module = type(backend).__module__
    if module.startswith("keyring.backends.null"):
        return "the keyring is switched off"
    if module.startswith("keyrings.alt") and "Plaintext" in type(backend).__name__:
        return "the keyring in use stores secrets in a plain-text file"
    return None


def backend_status() -> BackendStatus:
    import keyring

    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # a broken keyring config must not stop Hearth
        log.exception("keyring backend could not be loaded")
        return BackendStatus("unavailable", False, f"the keyring could not be loaded ({exc})")
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    why = _refused(backend)
    return BackendStatus(name, why is None, why or "")


def _require_backend(provider: str) -> None:
    status = backend_status()
    if not status.usable:
        raise KeyringUnusableError(
            f"Hearth will not store the key for {provider} because {status.note}; "
            + FIX.format(env=env_var(provider)) + "."
        )


def get_key(provider: str) -> str | None:
    """The key for `provider`: the environment variable first, then the keyring.
    Every key read is remembered by the redaction, so it never reaches a log."""
    from app.core.privacy import remember_secret

    from_env = os.environ.get(env_var(provider))
    if from_env:
        remember_secret(from_env)
        return from_env
    if not backend_status().usable:
        return None
    import keyring

    try:
        key = keyring.get_password(SERVICE, provider)
    except Exception:
        log.exception("reading the key for %s from the keyring failed", provider)
        return None
    remember_secret(key)
    return key


def check_key(key: str, where: str) -> None:
    """A key must be printable ASCII without spaces (it goes in an HTTP
    header); anything else is refused in one sentence that never shows it."""
    if any(c.isspace() for c in key):
        raise HearthError(f"The key {where} contains spaces or line breaks; "
                          "paste only the key.", reason="invalid_request")
    if not key.isascii() or not key.isprintable():
        raise HearthError(f"The key {where} contains characters other than plain ASCII "
                          "letters, digits and punctuation; paste only the key.",
                          reason="invalid_request")


def key_source(provider: str) -> str:
    """Where the key would come from, in words (never the key)."""
    if os.environ.get(env_var(provider)):
        return f"environment ({env_var(provider)})"
    return "keyring" if get_key(provider) else "none"


def set_key(provider: str, key: str) -> None:
    key = key.strip()
    if not key:
        raise HearthError("The key is empty; nothing was stored.", reason="invalid_request")
    check_key(key, f"for {provider}")
    _require_backend(provider)
    import keyring

    try:
        keyring.set_password(SERVICE, provider, key)
    except Exception as exc:  # noqa: BLE001  each keyring backend raises its own types
        # The exception text could echo the key back; log its type only.
        log.error("storing the key for %s failed: %s", provider, type(exc).__name__)
        raise KeyringUnusableError(
            f"The keyring refused to store the key for {provider}; unlock it and try again, "
            f"or set {env_var(provider)} instead."
        ) from None


def delete_key(provider: str) -> bool:
    """Remove a stored key; False when there was none."""
    _require_backend(provider)
    import keyring
    from keyring.errors import PasswordDeleteError

    try:
        keyring.delete_password(SERVICE, provider)
    except PasswordDeleteError:
        return False
    return True
