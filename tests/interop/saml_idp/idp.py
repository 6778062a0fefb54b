"""A SAML 2.0 identity provider for the tests, built on pysaml2 (PyPI) and
xmlsec1 (Debian): the ÉduConnect of tests/api/saml_layer.rs.

Files in --dir: idp-key.pem and idp-cert.pem (its signing and encryption
pair) and sp.xml (the ENT's SP metadata, as the ENT serves it).

  idp.py --dir D --entity-id E metadata
      prints the IdP's metadata.
  idp.py --dir D --entity-id E respond --request-url URL --user U [--attr K=V]...
      reads the AuthnRequest in URL (HTTP-Redirect binding), checks its
      signature with the SP metadata's key (exit 3 when it is missing or
      wrong), then
      prints a JSON object {"SAMLResponse": ..., "RelayState": ...,
      "Destination": ...}: the response the browser would post.
      Options: --sign-response, --no-sign-assertion, --sign-alg sha1|sha256,
      --encrypt aes128-cbc|aes256-cbc|aes128-gcm|aes256-gcm|3des,
      --signing-key K --signing-cert C (sign with another pair than the
      metadata's).
  idp.py --dir D serve --user U --password P [--attr K=V]... [--encrypt ALG]
      serves the login at /idp/sso and /idp/login on a free port of
      127.0.0.1 (printed as one line); the entity id is
      http://127.0.0.1:PORT/idp/metadata and the metadata is written to
      D/idp.xml. sp.xml is read at each login (it may come after the start).
      Single logout at /idp/slo: a LogoutRequest of the SP (signature
      checked with the SP metadata's key; its NameID and SessionIndex
      appended to D/logouts.log) is answered with a signed LogoutResponse;
      the SP's LogoutResponse gets a 200 page "logged out".
      /idp/initiate-logout?name_id=U[&unsigned=1] sends the browser to the
      SP's single logout with a LogoutRequest for U (signed unless asked)."""

import argparse
import base64
import functools
import json
import os
import sys
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import saml2.entity
import saml2.saml
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, sigver, xmldsig
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.response import IncorrectlySigned
from saml2.saml import AUTHN_PASSWORD, NAME_FORMAT_BASIC, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT
from saml2.server import Server

# Algorithm and xmlsec1 session key; pysaml2 itself always uses 3DES.
ENCRYPTION = {
    "aes128-cbc": ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "aes-128"),
    "aes256-cbc": ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "aes-256"),
    "aes128-gcm": ("http://www.w3.org/2009/xmlenc11#aes128-gcm", "aes-128"),
    "aes256-gcm": ("http://www.w3.org/2009/xmlenc11#aes256-gcm", "aes-256"),
    "3des": ("http://www.w3.org/2001/04/xmlenc#tripledes-cbc", "des-192"),
}
SIGNING = {
    "sha1": (xmldsig.SIG_RSA_SHA1, xmldsig.DIGEST_SHA1),
    "sha256": (xmldsig.SIG_RSA_SHA256, xmldsig.DIGEST_SHA256),
}


def config(args, key_file, cert_file):
    base = args.entity_id.rsplit("/", 1)[0]
    conf = {
        "entityid": args.entity_id,
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "key_file": key_file,
        "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        "service": {
            "idp": {
                "endpoints": {
                    "single_sign_on_service": [(base + "/sso", BINDING_HTTP_REDIRECT)],
                    "single_logout_service": [(base + "/slo", BINDING_HTTP_REDIRECT)],
                },
                "name_id_format": [NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT],
                "want_authn_requests_signed": True,
                "policy": {
                    "default": {
                        "lifetime": {"minutes": 5},
                        "attribute_restrictions": None,
                        "name_form": NAME_FORMAT_BASIC,
                        "fail_on_missing_requested": False,
                    }
                },
            }
        },
    }
    sp = os.path.join(args.dir, "sp.xml")
    if os.path.exists(sp):
        conf["metadata"] = {"local": [sp]}
    cfg = IdPConfig()
    cfg.load(conf)
    return cfg


def respond(args, idp):
    query = parse_qs(urlparse(args.request_url).query)
    msg = {k: v[0] for k, v in query.items()}
    print(json.dumps(make_response(args, idp, msg)))


def make_response(args, idp, msg):
    """The response to the AuthnRequest in msg (the query's parameters)."""
    # want_authn_requests_signed: pysaml2 refuses an unsigned request and
    # checks the signature of the query string with the SP metadata's key.
    try:
        req = idp.parse_authn_request(
            msg["SAMLRequest"],
            BINDING_HTTP_REDIRECT,
            relay_state=msg.get("RelayState"),
            sigalg=msg.get("SigAlg"),
            signature=msg.get("Signature"),
        )
    except IncorrectlySigned as e:
        print(f"AuthnRequest refused: {e!r}", file=sys.stderr)
        sys.exit(3)
    resp_args = idp.response_args(req.message, [BINDING_HTTP_POST])
    identity = {}
    for kv in args.attr:
        k, v = kv.split("=", 1)
        identity.setdefault(k, []).append(v)
    if args.encrypt:
        algorithm, session_key = ENCRYPTION[args.encrypt]
        saml2.entity.pre_encryption_part = functools.partial(sigver.pre_encryption_part, msg_enc=algorithm)
        idp.sec.encrypt_assertion = functools.partial(idp.sec.encrypt_assertion, key_type=session_key)
    sign_alg, digest_alg = SIGNING[args.sign_alg]
    resp = idp.create_authn_response(
        identity,
        userid=args.user,
        name_id=saml2.saml.NameID(format=NAMEID_FORMAT_PERSISTENT, text=args.user),
        authn={"class_ref": AUTHN_PASSWORD, "authn_auth": args.entity_id},
        sign_response=args.sign_response,
        sign_assertion=not args.no_sign_assertion,
        encrypt_assertion=bool(args.encrypt),
        encrypt_assertion_self_contained=True,
        sign_alg=sign_alg,
        digest_alg=digest_alg,
        **resp_args,
    )
    return {
        "SAMLResponse": base64.b64encode(str(resp).encode()).decode(),
        "RelayState": msg.get("RelayState"),
        "Destination": resp_args["destination"],
    }


class Handler(BaseHTTPRequestHandler):
    """GET /sso: the login form (the request kept in a hidden field);
    POST /login: the credentials checked, then the page that posts the
    response to the SP's assertion consumer."""

    def log_message(self, format, *args):
        pass

    def page(self, status, body):
        data = f"<!DOCTYPE html><html><body>{body}</body></html>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def server_idp(self):
        args = self.server.args
        key = os.path.join(args.dir, "idp-key.pem")
        cert = os.path.join(args.dir, "idp-cert.pem")
        return Server(config=config(args, key, cert))

    def do_GET(self):
        url = urlparse(self.path)
        msg = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/idp/slo":
            return self.single_logout(msg)
        if url.path == "/idp/initiate-logout":
            return self.initiate_logout(msg)
        if url.path != "/idp/sso":
            return self.page(404, "not found")
        self.page(
            200,
            '<form method="post" action="/idp/login">'
            f'<input type="hidden" name="query" value="{escape(url.query)}">'
            '<input name="username"><input name="password" type="password"><button>Log in</button></form>',
        )

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        args = self.server.args
        if form.get("username") != args.user or form.get("password") != args.password:
            return self.page(401, "wrong credentials")
        msg = {k: v[0] for k, v in parse_qs(form.get("query", "")).items()}
        key = os.path.join(args.dir, "idp-key.pem")
        cert = os.path.join(args.dir, "idp-cert.pem")
        try:
            answer = make_response(args, Server(config=config(args, key, cert)), msg)
        except SystemExit:
            return self.page(403, "request refused")
        self.page(
            200,
            f'<form method="post" action="{escape(answer["Destination"])}">'
            f'<input type="hidden" name="SAMLResponse" value="{escape(answer["SAMLResponse"])}">'
            f'<input type="hidden" name="RelayState" value="{escape(answer["RelayState"] or "")}">'
            "<button>Continue</button></form>",
        )


    def single_logout(self, msg):
        """The SP's LogoutRequest (signed: want_authn_requests_signed makes
        pysaml2 require it), answered with a signed LogoutResponse; or the
        SP's LogoutResponse to ours."""
        idp = self.server_idp()
        if "SAMLResponse" in msg:
            try:
                idp.parse_logout_request_response(msg["SAMLResponse"], BINDING_HTTP_REDIRECT)
            except Exception as e:
                return self.page(400, f"LogoutResponse refused: {escape(repr(e))}")
            return self.page(200, "logged out")
        try:
            req = idp.parse_logout_request(
                msg["SAMLRequest"],
                BINDING_HTTP_REDIRECT,
                relay_state=msg.get("RelayState"),
                sigalg=msg.get("SigAlg"),
                signature=msg.get("Signature"),
            )
        except Exception as e:
            return self.page(403, f"LogoutRequest refused: {escape(repr(e))}")
        if req is None:
            return self.page(403, "LogoutRequest refused")
        indexes = [i.text for i in req.message.session_index]
        with open(os.path.join(self.server.args.dir, "logouts.log"), "a") as f:
            f.write(json.dumps({"name_id": req.message.name_id.text, "session_index": indexes}) + "\n")
        resp = idp.create_logout_response(req.message, [BINDING_HTTP_REDIRECT])
        destination = idp.response_args(req.message, [BINDING_HTTP_REDIRECT])["destination"]
        info = idp.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(resp),
            destination,
            msg.get("RelayState", ""),
            response=True,
            sign=True,
            sigalg=xmldsig.SIG_RSA_SHA256,
        )
        self.redirect(dict(info["headers"])["Location"])

    def initiate_logout(self, msg):
        """Sends the browser to the SP's single logout with a LogoutRequest
        for name_id, signed unless unsigned=1."""
        idp = self.server_idp()
        sp = idp.metadata.service_providers()[0]
        slo = idp.metadata.single_logout_service(sp, BINDING_HTTP_REDIRECT, "spsso")[0]["location"]
        name_id = saml2.saml.NameID(format=NAMEID_FORMAT_PERSISTENT, text=msg["name_id"])
        _, req = idp.create_logout_request(slo, sp, name_id=name_id, sign=False)
        info = idp.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(req),
            slo,
            "idp-relay",
            sign=msg.get("unsigned") != "1",
            sigalg=xmldsig.SIG_RSA_SHA256,
        )
        self.redirect(dict(info["headers"])["Location"])


def serve(args):
    """Serves on 127.0.0.1 (a free port, printed as one line); the entity
    id and endpoints follow the port; the metadata goes to DIR/idp.xml."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    args.entity_id = f"http://127.0.0.1:{port}/idp/metadata"
    args.sign_response = False
    args.no_sign_assertion = False
    args.sign_alg = "sha256"
    httpd.args = args
    key = os.path.join(args.dir, "idp-key.pem")
    cert = os.path.join(args.dir, "idp-cert.pem")
    with open(os.path.join(args.dir, "idp.xml"), "w") as f:
        f.write(create_metadata_string(None, config(args, key, cert), sign=False).decode())
    print(port, flush=True)
    httpd.serve_forever()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--entity-id", default="")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("metadata")
    r = sub.add_parser("respond")
    r.add_argument("--request-url", required=True)
    r.add_argument("--user", required=True)
    r.add_argument("--attr", action="append", default=[])
    r.add_argument("--sign-response", action="store_true")
    r.add_argument("--no-sign-assertion", action="store_true")
    r.add_argument("--sign-alg", choices=sorted(SIGNING), default="sha256")
    r.add_argument("--encrypt", choices=sorted(ENCRYPTION))
    r.add_argument("--signing-key")
    r.add_argument("--signing-cert")
    s = sub.add_parser("serve")
    s.add_argument("--user", required=True)
    s.add_argument("--password", required=True)
    s.add_argument("--attr", action="append", default=[])
    s.add_argument("--encrypt", choices=sorted(ENCRYPTION))
    args = parser.parse_args()
    if args.command == "serve":
        return serve(args)

    key = os.path.join(args.dir, "idp-key.pem")
    cert = os.path.join(args.dir, "idp-cert.pem")
    if args.command == "metadata":
        print(create_metadata_string(None, config(args, key, cert), sign=False).decode())
        return
    if args.signing_key:
        key, cert = args.signing_key, args.signing_cert
    respond(args, Server(config=config(args, key, cert)))


if __name__ == "__main__":
    main()
