"""ralf.values checks characters without regular expressions (start-up); these are the patterns it follows,
compared with it on random text made of the characters that matter and of the lengths at the limits."""

from __future__ import annotations

import random
import re

import pytest

from ralf import values

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
PATTERNS = {
    "hostname": rf"(?=.{{1,253}}\.?\Z){_LABEL}(?:\.{_LABEL})*\.?\Z",
    "unit": r"[A-Za-z0-9:_.\\@][A-Za-z0-9:_.\\@-]{0,254}\Z",
    "user": r"[a-z_][a-z0-9_.-]{0,31}\Z",
    "abs_path": r"/[A-Za-z0-9_./+-]*\Z",
    "bucket": r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z",
    "word": r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z",
    "key_prefix": r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*\Z",
}
URL_CHARS = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+\Z"

# every character some pattern treats specially, a few that none allows, and a non-ASCII letter and digit
ALPHABET = "aZ09-_.:/@\\+~%?#[]!$&'()*,;= \n\t\x7fé٣"


def _texts(seed: int, count: int) -> list[str]:
    rnd = random.Random(seed)
    out = ["", ".", "..", "a.", ".a", "a..b", "-a", "a-", "a" * 63, "a" * 64, "a" * 253, "a" * 253 + ".",
           "a" * 254, ("a" * 63 + ".") * 4, "x\n", "\nx", "a" * 255, "a" * 256, "a" * 32, "a" * 33, "ab", "abc"]
    for _ in range(count):
        n = rnd.choice([1, 2, 3, 4, 8, 16, 31, 32, 33, 62, 63, 64, 65, 252, 253, 254, 255, 256])
        weights = rnd.choice([None, [20 if c in "aZ09" else 1 for c in ALPHABET]])
        text = "".join(rnd.choices(ALPHABET, weights=weights, k=n))
        if rnd.random() < 0.5:  # mostly valid characters, with dots: labels and segments of every length
            text = ".".join(text[i:i + rnd.randint(1, 70)] for i in range(0, len(text), 70))
        out.append("/" + text if rnd.random() < 0.2 else text)
    return out


def _accepts(check, v: str) -> bool:
    try:
        check(v)
        return True
    except ValueError:
        return False


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_each_check_accepts_what_its_pattern_matches(name):
    check, pattern = getattr(values, name), PATTERNS[name]
    texts = _texts(seed=len(name), count=8_000)
    assert sum(bool(re.match(pattern, v)) for v in texts) > 50, "too few matching texts to compare"
    for v in texts:
        assert _accepts(check, v) == bool(re.match(pattern, v)), repr(v)


def test_a_host_is_an_ip_address_or_a_hostname():
    for v in _texts(seed=7, count=5_000) + ["10.10.0.1", "::1", "fe80::1", "10.10.0.256"]:
        is_ip = _accepts(values.ip, v)
        assert _accepts(values.host, v) == (is_ip or bool(re.match(PATTERNS["hostname"], v))), repr(v)


def test_a_url_holds_only_the_characters_rfc_3986_allows():
    for v in _texts(seed=11, count=5_000):
        url = f"https://h/{v}"
        if re.match(URL_CHARS, url) or any(ord(c) < 32 or ord(c) == 127 for c in url):
            continue  # a control character has a message of its own
        with pytest.raises(ValueError) as e:
            values.url(url)
        bad = sorted({c for c in url if not re.match(URL_CHARS, c)})
        assert str(e.value) == f"a URL must not contain {' '.join(map(repr, bad))} (percent-encode it)"
