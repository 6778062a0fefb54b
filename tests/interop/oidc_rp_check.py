#!/usr/bin/env python3
"""Interop check: a real third-party OpenID Connect relying party (Authlib)
against idp.

Authlib does the protocol work: the authorization URL (state, nonce, PKCE
S256), the code exchange with ``client_secret_basic``, the ID token signature
(against the JWKS from discovery) and claims (``iss``, ``aud``, ``exp``,
``nonce``, ``at_hash``), UserInfo, refresh, introspection and revocation.
This script only plays the browser: it follows the redirects to the real CAS
login form, fills it in (with its CSRF token) and comes back. Then it checks
RP-initiated logout: back to the registered URI with ``state``, and the next
authorization asks for the login again.

Usage::

    python oidc_rp_check.py --issuer http://127.0.0.1:PORT --client-id ID \\
        --client-secret S --redirect-uri URI --post-logout-redirect-uri URI \\
        --username U --password P

Prints one line per step on standard output; exits 1 with the reason on
standard error at the first failure.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken
from authlib.common.security import generate_token

TIMEOUT = 10


class CheckFailed(Exception):
    """A step did not behave as a relying party expects."""


class HiddenInputs(HTMLParser):
    """Collects the hidden inputs of a page (the login form's)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict = {}

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""


def location(response: requests.Response, what: str) -> str:
    if response.status_code not in (302, 303):
        raise CheckFailed(f"{what}: expected a redirect, got {response.status_code}: {response.text[:300]}")
    return urljoin(response.url, response.headers["Location"])


def browser_login(browser: requests.Session, auth_url: str, username: str, password: str) -> str:
    """Plays the browser from the authorization URL to the client's redirect."""
    to_login = location(browser.get(auth_url, allow_redirects=False, timeout=TIMEOUT), "authorize")
    if "/cas/login" not in to_login:
        raise CheckFailed(f"authorize without a session should go to the CAS login, went to {to_login}")
    service = parse_qs(urlsplit(to_login).query)["service"][0]
    page = browser.get(to_login + "&profile=eleve-parent", allow_redirects=False, timeout=TIMEOUT)
    if page.status_code != 200:
        raise CheckFailed(f"login page: {page.status_code}")
    parser = HiddenInputs()
    parser.feed(page.text)
    form = dict(parser.fields)
    if form.get("service") != service or "csrf_token" not in form:
        raise CheckFailed(f"login form: unexpected hidden fields {sorted(form)}")
    form.update(username=username, password=password)
    back = location(browser.post(urljoin(to_login, "/cas/login"), data=form, allow_redirects=False, timeout=TIMEOUT), "login")
    return location(browser.get(back, allow_redirects=False, timeout=TIMEOUT), "authorize after login")


def run(args: argparse.Namespace) -> None:
    meta = requests.get(f"{args.issuer}/.well-known/openid-configuration", timeout=TIMEOUT).json()
    if meta["issuer"] != args.issuer or "S256" not in meta["code_challenge_methods_supported"]:
        raise CheckFailed(f"discovery: {meta}")
    jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=TIMEOUT).json())
    print("discovery ok")

    rp = OAuth2Session(
        args.client_id,
        args.client_secret,
        scope="openid profile email ent",
        redirect_uri=args.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = generate_token(48)
    nonce = generate_token(20)
    auth_url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], nonce=nonce, code_verifier=verifier
    )
    browser = requests.Session()
    callback = browser_login(browser, auth_url, args.username, args.password)
    if not callback.startswith(args.redirect_uri):
        raise CheckFailed(f"the login should come back to the client, went to {callback}")
    print("login ok")

    token = rp.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier, state=state
    )
    claims = jwt.decode(
        token["id_token"],
        jwks,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": args.issuer}},
        claims_params={"nonce": nonce, "client_id": args.client_id, "access_token": token["access_token"]},
    )
    claims.validate()
    # The subject is opaque; the login comes as preferred_username.
    if not claims["sub"] or claims["sub"] == args.username or claims.get("preferred_username") != args.username:
        raise CheckFailed(f"id token sub: {claims['sub']}, preferred_username: {claims.get('preferred_username')}")
    print(f"id token ok ({claims.header['alg']})")

    info = rp.get(meta["userinfo_endpoint"], timeout=TIMEOUT).json()
    if info.get("sub") != claims["sub"] or not info.get("given_name") or not info.get("school"):
        raise CheckFailed(f"userinfo: {info}")
    print("userinfo ok")

    old_refresh = token["refresh_token"]
    new = rp.refresh_token(meta["token_endpoint"], refresh_token=old_refresh)
    if new["refresh_token"] == old_refresh:
        raise CheckFailed("the refresh token was not rotated")
    print("refresh ok")

    active = rp.introspect_token(meta["introspection_endpoint"], token=new["access_token"]).json()
    stale = rp.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json()
    if active.get("active") is not True or stale.get("active") is not False:
        raise CheckFailed(f"introspection: new {active}, superseded {stale}")
    print("introspection ok")

    logout_state = generate_token(12)
    r = browser.get(
        meta["end_session_endpoint"],
        params={
            "id_token_hint": new.get("id_token", token["id_token"]),
            "post_logout_redirect_uri": args.post_logout_redirect_uri,
            "state": logout_state,
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    back = location(r, "end session")
    if not back.startswith(args.post_logout_redirect_uri) or parse_qs(urlsplit(back).query).get("state") != [logout_state]:
        raise CheckFailed(f"end session went to {back}")
    again, _ = rp.create_authorization_url(meta["authorization_endpoint"], nonce=generate_token(20), code_verifier=generate_token(48))
    after = location(browser.get(again, allow_redirects=False, timeout=TIMEOUT), "authorize after logout")
    if "/cas/login" not in after:
        raise CheckFailed(f"after logout, authorize should ask for the login, went to {after}")
    revoked = rp.introspect_token(meta["introspection_endpoint"], token=new["refresh_token"]).json()
    if revoked.get("active") is not False:
        raise CheckFailed(f"the session's refresh token survived the logout: {revoked}")
    print("logout ok")


def parse_args(argv: list | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("issuer", "client-id", "client-secret", "redirect-uri", "post-logout-redirect-uri", "username", "password"):
        p.add_argument(f"--{name}", required=True)
    return p.parse_args(argv)


def main(argv: list | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except CheckFailed as e:
        print(f"oidc check failed: {e}", file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001 - report anything with its trace
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
