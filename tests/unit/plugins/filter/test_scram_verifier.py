"""airflow_ops.airflow_vm.scram_verifier: the verifier PostgreSQL stores for
a password, from the salt of the stored one. The vectors are what
PostgreSQL 15 (Debian 12's postgresql-15) stored for `CREATE ROLE ... LOGIN
PASSWORD '...'` with password_encryption = scram-sha-256."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "plugins/filter"))
from scram_verifier import FilterModule, scram_verifier  # noqa: E402

STORED = {
    "correct horse battery staple": "SCRAM-SHA-256$4096:Wy0AfMP1u8i71OxQnoQnqw==$"
    "KRMAU+F8O5bQ3kNXAKQbG6lVCaqRTDpvC8qkX7s2mkk=:YQFMIjLYbTJ/WHNTaVIpE68JzRrg7Rp1xI/8pRk1dAk=",
    # full-width letters and a Roman numeral: SASLprep maps them (NFKC)
    "ｐａｓｓｗｏｒｄ-Ⅸ": "SCRAM-SHA-256$4096:zh7pwLeshdYQ4sBZvdyrng==$"
    "zcTvj4sD/Rsk0u/EcyrPzGPC7Q08Uea3RZlc7MB6B3s=:A+WVFVy72Z3aaUnf4oFjEB6U/WsbcDQ4KLjbVkLlLRE=",
}


@pytest.mark.parametrize("password", STORED)
def test_the_password_gives_what_postgresql_stored(password):
    stored = STORED[password]
    assert scram_verifier(password, stored.split("$")[1]) == stored


def test_another_password_gives_another_verifier():
    stored = STORED["correct horse battery staple"]
    assert scram_verifier("correct horse battery stapler", stored.split("$")[1]) != stored


@pytest.mark.parametrize("salt", ["", "4096", "many:Wy0AfMP1u8i71OxQnoQnqw==", "4096:not base64!", "0:Wy0AfMP1u8i71OxQnoQnqw=="])
def test_a_malformed_salt_says_what_it_must_be(salt):
    with pytest.raises(AnsibleFilterError, match=r"^scram_verifier: "):
        scram_verifier("secret", salt)


def test_registered_under_its_name():
    assert FilterModule().filters() == {"scram_verifier": scram_verifier}
