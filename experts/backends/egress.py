"""Where expert backends may connect, and which environment variables may hold their keys (pure Python).

An expert's ``base_url`` is an outbound request the product makes on a caller's behalf, and its ``api_key_env`` names
a secret sent along: unchecked, whoever may edit a backend could read the server's environment (``DATABASE_URL`` as
a bearer token to their own listener) or reach internal hosts (SSRF). Both are checked when a backend is saved and
again when it is built, so a row stored before a rule tightened cannot be used either.
"""
from __future__ import annotations

import fnmatch
import ipaddress
import re
from urllib.parse import urlsplit

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EgressRefused(ValueError):
    """A base URL or key variable the deployment does not allow; the message says which setting to change."""


def _host_matches(host: str, rule: str) -> bool:
    try:
        network = ipaddress.ip_network(rule, strict=False)
    except ValueError:
        return fnmatch.fnmatchcase(host, rule.lower())  # names: exact, or a wildcard such as *.internal.example
    try:
        return ipaddress.ip_address(host) in network
    except ValueError:
        return False  # a name never matches a network rule: names are allowed by name only


def check_base_url(url: str, allowed_hosts) -> str:
    """``url`` if it is an http(s) URL to an allowed host, without credentials, query or fragment; else
    EgressRefused. ``allowed_hosts``: names (``vllm.internal``), wildcards (``*.example.com``), addresses or networks
    (``10.0.0.0/8``); ``*`` allows any host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EgressRefused(f"base_url {url!r} is not a valid URL ({exc}).") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EgressRefused("base_url must start with http:// or https:// and name a host (e.g. http://vllm:8000/v1).")
    if parts.username is not None or parts.password is not None:
        raise EgressRefused("base_url must not carry credentials: name the key's environment variable in api_key_env.")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise EgressRefused("base_url must not have a query string or fragment (the request path is appended to it).")
    host = parts.hostname.lower()
    if not any(rule == "*" or _host_matches(host, rule) for rule in (r.strip().lower() for r in allowed_hosts) if rule):
        where = f"{host}:{port}" if port else host
        raise EgressRefused(f"base_url host {where} is not allowed: add it to COE_UPSTREAM_ALLOWED_HOSTS "
                            f"(names, *.wildcards or networks such as 10.0.0.0/8).")
    return url


def check_key_env(name: str, prefix: str, allowed_names) -> str:
    """``name`` if it may hold an upstream key: it starts with ``prefix`` or is listed in ``allowed_names``."""
    if not name:
        return name
    if not ENV_NAME.match(name):
        raise EgressRefused(f"api_key_env {name!r} is not an environment variable name.")
    if (prefix and name.startswith(prefix)) or name in set(allowed_names):
        return name
    rule = f"names starting with {prefix}" if prefix else "no prefix"
    raise EgressRefused(f"api_key_env {name} is not an allowed key variable ({rule}, or listed in COE_API_KEY_ENVS): "
                        f"only variables meant for upstream keys may be sent to an expert.")
