"""Whether a new passphrase is strong enough: a minimum length, then zxcvbn's estimate.

zxcvbn (Dropbox's estimator; the maintained Python port on PyPI, MIT) counts the guesses an
attacker who knows common passwords, words, names, keyboard walks, dates, repeats and l33t
substitutions would need; a character-class "entropy" formula rates ``Password1234567`` as
strong, zxcvbn does not. A passphrase is accepted at ``MIN_SCORE`` 3 (at least 10^8 guesses)
or more: each guess costs an attacker one Argon2id derivation with 64 MiB (vault.keys.passphrase),
so 10^8 guesses are years of one core. Only the new-passphrase path imports it: opening a vault
never does.
"""

from __future__ import annotations

import os

MIN_LENGTH = 12
MIN_SCORE = 3
# zxcvbn refuses longer input; a longer passphrase is at least as strong as its first 72
# characters, so those are what is estimated.
ESTIMATED_PREFIX = 72


def weakness(passphrase: str) -> str | None:
    """Why ``passphrase`` is refused as a new passphrase (one sentence, never quoting it), or
    None when it is strong enough."""
    if len(passphrase) < MIN_LENGTH:
        return f"it is {len(passphrase)} characters long; at least {MIN_LENGTH} are needed"
    from zxcvbn import zxcvbn

    hints = [word for word in ("vault", os.environ.get("USER"), os.environ.get("LOGNAME")) if word]
    result = zxcvbn(passphrase[:ESTIMATED_PREFIX], user_inputs=hints)
    if int(result["score"]) >= MIN_SCORE:
        return None
    feedback = result.get("feedback") or {}
    warning = str(feedback.get("warning") or "").strip().rstrip(".")
    suggestions = " ".join(str(s).strip() for s in feedback.get("suggestions") or [] if s)
    why = f"{warning[0].lower()}{warning[1:]}" if warning else "it would be guessed too easily"
    return f"it is too easy to guess ({why})" + (f". {suggestions}" if suggestions else "")
