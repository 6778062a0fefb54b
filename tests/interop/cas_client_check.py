#!/usr/bin/env python3
"""Interop check: a real third-party CAS client (python-cas) against idp.

The check behaves like a browser plus a CAS-protected application:

1. it logs in through the server's real HTML pages (profile choice, then the
   login form with its CSRF token), following nothing automatically so that
   it can read the service ticket from the ``Location`` header;
2. it validates one fresh service ticket with each of python-cas's CAS 1, 2
   and 3 clients (``/validate``, ``/serviceValidate``, ``/p3/serviceValidate``);
   the second and third tickets come from the SSO session (a plain
   ``GET /login?service=...`` answered by a redirect).

Usage::

    python cas_client_check.py --cas-url http://127.0.0.1:8080/cas/ \\
        --service https://app.example.test/ --username U --password P \\
        [--expect-attribute NAME ...]

Prints one line per CAS version on standard output and exits 0 when all three
clients returned the expected user (and, for CAS 3, a non-empty attributes
dict holding every expected attribute). Any failure is explained on standard
error and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
from cas import CASClient

TIMEOUT_SECONDS = 10
PROFILE_LABEL = "Élève ou parent"
WELCOME_TEXT = "Bienvenue dans votre ENT !"
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


class CheckFailed(Exception):
    """A step of the check did not behave as a CAS client expects."""


# --------------------------------------------------------------------------
# HTML parsing (standard library only)
# --------------------------------------------------------------------------


def collapse_whitespace(text: str) -> str:
    """Collapse runs of whitespace to single spaces and strip the ends."""
    return " ".join(text.split())


class PageParser(HTMLParser):
    """Collects the links (href + visible text) and forms of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[dict] = []
        self.forms: list[dict] = []
        self._link_stack: list[dict] = []
        self._form: dict | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = {name: (value if value is not None else "") for name, value in attrs}
        if tag == "a":
            link = {"href": attributes.get("href"), "text_parts": []}
            self._link_stack.append(link)
        elif tag == "form":
            self._form = {
                "method": attributes.get("method", "get").lower(),
                "action": attributes.get("action", ""),
                "inputs": [],
            }
        elif tag == "input" and self._form is not None:
            self._form["inputs"].append(
                {
                    "type": attributes.get("type", "text").lower(),
                    "name": attributes.get("name"),
                    "value": attributes.get("value", ""),
                }
            )

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link_stack:
            link = self._link_stack.pop()
            link["text"] = collapse_whitespace("".join(link.pop("text_parts")))
            self.links.append(link)
        elif tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None

    def handle_data(self, data: str) -> None:
        for link in self._link_stack:
            link["text_parts"].append(data)

    def close(self) -> None:
        super().close()
        # Be lenient with an unclosed <form> at the end of the document.
        if self._form is not None:
            self.forms.append(self._form)
            self._form = None


def parse_page(html: str) -> PageParser:
    """Parse an HTML document and return the filled parser."""
    parser = PageParser()
    parser.feed(html)
    parser.close()
    return parser


# --------------------------------------------------------------------------
# HTTP helpers
# --------------------------------------------------------------------------


def login_url(cas_url: str, service: str) -> str:
    """Return ``{cas_url}login?service=<urlencoded service>``."""
    return urljoin(cas_url, "login") + "?" + urlencode({"service": service})


def describe(response: requests.Response) -> str:
    """One-line description of a response, for error messages."""
    location = response.headers.get("Location")
    extra = f" Location={location!r}" if location else ""
    snippet = collapse_whitespace(response.text[:300]) if response.text else ""
    return f"{response.request.method} {response.url} -> {response.status_code}{extra} body={snippet!r}"


def get(session: requests.Session, url: str) -> requests.Response:
    """GET without following redirects."""
    try:
        return session.get(url, allow_redirects=False, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as error:
        raise CheckFailed(f"GET {url} failed: {error}") from error


def post(session: requests.Session, url: str, data: dict) -> requests.Response:
    """POST a form without following redirects."""
    try:
        return session.post(url, data=data, allow_redirects=False, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as error:
        raise CheckFailed(f"POST {url} failed: {error}") from error


def expect_html_200(response: requests.Response, what: str) -> str:
    """Return the body of a 200 HTML answer, or fail with a description."""
    if response.status_code != 200:
        raise CheckFailed(f"{what}: expected 200, got {describe(response)}")
    content_type = response.headers.get("Content-Type", "")
    if "html" not in content_type.lower():
        raise CheckFailed(f"{what}: expected an HTML page, got Content-Type {content_type!r}")
    return response.text


def ticket_from_redirect(response: requests.Response, service: str, what: str) -> str:
    """Read ``ticket`` from a redirect to the service, checking its target."""
    if response.status_code not in REDIRECT_STATUSES:
        raise CheckFailed(f"{what}: expected a redirect to the service, got {describe(response)}")
    location = response.headers.get("Location")
    if not location:
        raise CheckFailed(f"{what}: redirect without a Location header ({describe(response)})")
    target = urlsplit(urljoin(response.url, location))
    wanted = urlsplit(service)
    if (target.scheme, target.netloc, target.path) != (wanted.scheme, wanted.netloc, wanted.path):
        raise CheckFailed(f"{what}: redirect to {location!r}, not to the service {service!r}")
    tickets = parse_qs(target.query).get("ticket", [])
    if len(tickets) != 1 or not tickets[0]:
        raise CheckFailed(f"{what}: no single ticket parameter in Location {location!r}")
    ticket = tickets[0]
    if not ticket.startswith("ST-"):
        raise CheckFailed(f"{what}: ticket {ticket!r} does not start with 'ST-'")
    return ticket


# --------------------------------------------------------------------------
# Login flow
# --------------------------------------------------------------------------


def choose_profile(session: requests.Session, cas_url: str, service: str) -> str:
    """Open the login page and follow the profile link; return the login form page URL."""
    url = login_url(cas_url, service)
    response = get(session, url)
    html = expect_html_200(response, "profile choice page")
    if WELCOME_TEXT not in html:
        raise CheckFailed(f"profile choice page: text {WELCOME_TEXT!r} not found at {url}")
    links = [link for link in parse_page(html).links if link["text"] == PROFILE_LABEL]
    if not links or not links[0]["href"]:
        found = [link["text"] for link in parse_page(html).links]
        raise CheckFailed(f"profile choice page: no link {PROFILE_LABEL!r} (links: {found})")
    return urljoin(response.url, links[0]["href"])


def find_login_form(html: str, page_url: str) -> dict:
    """Return the POST form holding a password field, with its action resolved."""
    for form in parse_page(html).forms:
        names = {field["name"] for field in form["inputs"]}
        if form["method"] == "post" and "password" in names:
            form["action"] = urljoin(page_url, form["action"] or page_url)
            return form
    raise CheckFailed(f"login page {page_url}: no POST form with a password field")


def submit_credentials(
    session: requests.Session, form_url: str, service: str, username: str, password: str
) -> str:
    """Fill and submit the login form; return the service ticket of the redirect."""
    response = get(session, form_url)
    html = expect_html_200(response, "login form page")
    form = find_login_form(html, response.url)
    hidden = {
        field["name"]: field["value"]
        for field in form["inputs"]
        if field["type"] == "hidden" and field["name"]
    }
    for required in ("csrf_token", "service"):
        if required not in hidden:
            raise CheckFailed(f"login form: hidden input {required!r} missing (have {sorted(hidden)})")
    if hidden["service"] != service:
        raise CheckFailed(f"login form: hidden service is {hidden['service']!r}, expected {service!r}")
    data = dict(hidden)
    data["username"] = username
    data["password"] = password
    response = post(session, form["action"], data)
    return ticket_from_redirect(response, service, "credentials POST")


def ticket_from_sso(session: requests.Session, cas_url: str, service: str) -> str:
    """Ask for another ticket: the SSO session must redirect straight to the service."""
    response = get(session, login_url(cas_url, service))
    return ticket_from_redirect(response, service, "SSO login (existing session)")


# --------------------------------------------------------------------------
# Validation with python-cas
# --------------------------------------------------------------------------


def validate(version: int, cas_url: str, service: str, ticket: str) -> tuple:
    """Validate ``ticket`` with python-cas's client for CAS ``version``."""
    client = CASClient(version=version, service_url=service, server_url=cas_url)
    # python-cas sets no timeout of its own; give its session one.
    original_request = client.session.request

    def request_with_timeout(method, url, **kwargs):
        kwargs.setdefault("timeout", TIMEOUT_SECONDS)
        return original_request(method, url, **kwargs)

    client.session.request = request_with_timeout
    try:
        user, attributes, pgtiou = client.verify_ticket(ticket)
    except Exception as error:  # python-cas raises whatever requests/XML parsing raises
        raise CheckFailed(
            f"CAS{version}: python-cas failed to validate {ticket}: {type(error).__name__}: {error}"
        ) from error
    return user, attributes, pgtiou


def check_version(
    version: int, cas_url: str, service: str, ticket: str, username: str, expected: list
) -> str:
    """Validate one ticket with one CAS version and return the success line."""
    user, attributes, _pgtiou = validate(version, cas_url, service, ticket)
    if user != username:
        raise CheckFailed(f"CAS{version}: python-cas returned user {user!r}, expected {username!r}")
    if version != 3:
        return f"CAS{version} ok user={user}"
    if not isinstance(attributes, dict) or not attributes:
        raise CheckFailed(f"CAS3: python-cas returned no attributes ({attributes!r})")
    missing = [name for name in expected if name not in attributes]
    if missing:
        raise CheckFailed(f"CAS3: attributes {missing} missing from {sorted(attributes)}")
    return f"CAS3 ok user={user} attributes={attributes}"


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def parse_args(argv: list | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cas-url", required=True, help="CAS base URL, e.g. http://127.0.0.1:8080/cas/")
    parser.add_argument("--service", required=True, help="registered service URL")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument(
        "--expect-attribute",
        action="append",
        default=[],
        metavar="NAME",
        help="attribute that CAS 3 must release (repeatable)",
    )
    args = parser.parse_args(argv)
    # python-cas joins endpoint names to server_url with urljoin: without the
    # trailing slash, ".../cas" + "validate" would become ".../validate".
    if not args.cas_url.endswith("/"):
        args.cas_url += "/"
    return args


def main(argv: list | None = None) -> int:
    """Run the whole check; return the process exit status."""
    args = parse_args(argv)
    session = requests.Session()
    try:
        form_url = choose_profile(session, args.cas_url, args.service)
        ticket = submit_credentials(session, form_url, args.service, args.username, args.password)
        for version in (1, 2, 3):
            if version != 1:
                ticket = ticket_from_sso(session, args.cas_url, args.service)
            line = check_version(
                version, args.cas_url, args.service, ticket, args.username, args.expect_attribute
            )
            print(line, flush=True)
    except CheckFailed as failure:
        print(f"cas_client_check: FAILED: {failure}", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - report anything else as a failure too
        traceback.print_exc()
        print(f"cas_client_check: FAILED: unexpected {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
