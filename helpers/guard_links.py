"""Links in chapter 06's guard: find them, check them against a domain allow-list, remove the others."""

from __future__ import annotations

import re
from collections.abc import Iterable

from helpers.guard_normalise import normalise

# a link with a scheme or www., or a bare domain with a common top-level domain
LINK = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+|\b(?:[a-z0-9-]+\.)+(?:com|org|net|io|co|uk|info|biz|xyz|ru|"
                  r"de|fr|app|dev|ly|me|shop|store|online|site|example)\b(?:/[^\s<>\"')\]]*)?", re.I)


def domain(link: str) -> str:
    return re.sub(r"^(?:https?://)?(?:www\.)?", "", link.lower()).split("/")[0].split(":")[0].rstrip(".")


def outside(link: str, allowed_domains: Iterable[str]) -> bool:
    host = domain(link)
    return not any(host == allowed or host.endswith("." + allowed) for allowed in allowed_domains)


def link_reasons(text: str, allowed_domains: Iterable[str]) -> list[str]:
    allowed_domains = list(allowed_domains)
    hosts = sorted({domain(link) for link in LINK.findall(normalise(text)) if outside(link, allowed_domains)})
    return [f"link: {host} is outside the allow-list" for host in hosts]


def remove_links(text: str, allowed_domains: Iterable[str]) -> str:
    """``text`` with every link outside ``allowed_domains`` replaced by '[link removed]'."""
    allowed_domains = list(allowed_domains)
    return LINK.sub(lambda match: "[link removed]" if outside(match.group(), allowed_domains) else match.group(),
                    normalise(text))
