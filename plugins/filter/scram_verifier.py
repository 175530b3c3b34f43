# Copyright: the airflow_ops.airflow_vm authors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""airflow_ops.airflow_vm.scram_verifier (docs: scram_verifier.yml): the
SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802, RFC 7677),
given the salt and iteration count of the verifier it stores now. The
postgresql role compares it with what the server holds, so a re-run skips
the login roles whose password is already set."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import unicodedata

from ansible.errors import AnsibleFilterError


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def scram_verifier(password, salt: str) -> str:
    """`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` for
    `password`, with `salt` as `<iterations>:<base64 salt>` (the part of a
    stored verifier between its first and second `$`)."""
    try:
        count, encoded = str(salt).split(":", 1)
        iterations = int(count)
        raw_salt = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error) as error:
        raise AnsibleFilterError(
            f"scram_verifier: the salt must be '<iterations>:<base64 salt>' as PostgreSQL stores it, got {salt!r}"
        ) from error
    if iterations < 1 or not raw_salt:
        raise AnsibleFilterError(f"scram_verifier: no iterations or an empty salt in {salt!r}")
    text = str(password)
    # PostgreSQL prepares a non-ASCII password with SASLprep; NFKC is its
    # main step (a password it would prepare otherwise only fails to match,
    # and the role's module then sets it as before).
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    salted = hashlib.pbkdf2_hmac("sha256", text.encode("utf-8"), raw_salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return f"SCRAM-SHA-256${iterations}:{encoded}${_b64(hashlib.sha256(client_key).digest())}:{_b64(server_key)}"


class FilterModule:
    def filters(self):
        return {"scram_verifier": scram_verifier}
