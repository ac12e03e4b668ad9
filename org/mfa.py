"""The second factor (RELIABILITY AUTH-05): a time-based one-time code (TOTP, RFC 6238).

A staff member enrols by scanning a QR code (or typing the key) into an authenticator app and
confirming one code; from then on signing in takes the password and a current 6-digit code.
A code is accepted within one 30-second step either side (clock drift) and only once: the step
of the last accepted code is kept, so a code seen over a shoulder cannot be replayed. Wrong codes
count towards the same lock as wrong passwords. With ``CAMPAIGNFLOW_MFA_REQUIRED`` every login
must have enrolled; an admin can reset a lost phone (``campaignflow users mfa-reset``).

The seed is stored as is (base32) in ``staff.totp_secret``; encrypting it under a key kept outside
the database is left to the deployment (RELIABILITY PII-06 names a vault).
"""

from __future__ import annotations

import hmac
import re
import time

import pyotp
import segno
from sqlalchemy.orm import Session

from org.models import Staff

ISSUER = "campaignflow"
STEP = 30
_CODE = re.compile(r"\d{6}")


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(staff: Staff, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=staff.staff_no, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The enrolment QR code as inline SVG (drawn on the server: no script, no CDN)."""
    return str(segno.make(uri, error="m").svg_inline(scale=5, border=2))


def grouped(secret: str) -> str:
    """The key for typing by hand, in groups of four."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step ``code`` belongs to (now, or one step either side), else None."""
    code = (code or "").replace(" ", "").strip()
    if not _CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    current = int((time.time() if now is None else now) // STEP)
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.at(step * STEP), code):
            return step
    return None


def verify(session: Session, staff: Staff, code: str, now: float | None = None) -> bool:
    """Accept ``code`` for the enrolled ``staff`` once (a replayed step is refused)."""
    if not staff.totp_secret:
        return False
    step = matching_step(staff.totp_secret, code, now)
    if step is None or (staff.totp_last_step is not None and step <= staff.totp_last_step):
        return False
    staff.totp_last_step = step
    session.flush()
    return True


def enrol(session: Session, staff: Staff, secret: str, code: str, now: float | None = None) -> bool:
    """Turn the second factor on once the person proves their app shows the codes of ``secret``."""
    step = matching_step(secret, code, now)
    if step is None:
        return False
    staff.totp_secret, staff.totp_last_step = secret, step
    session.flush()
    return True


def reset(session: Session, staff: Staff) -> None:
    """Turn it off (a lost phone); the person enrols again at the next sign-in if it is required."""
    staff.totp_secret, staff.totp_last_step = None, None
    staff.session_epoch += 1  # and every open session ends
    session.flush()
