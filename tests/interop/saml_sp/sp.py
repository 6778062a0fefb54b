"""A SAML 2.0 service provider for the tests, built on pysaml2 (PyPI) and
xmlsec1 (Debian): the GAR (or any SAML-only service) of
tests/api/saml_idp.rs, in front of the ENT's identity provider.

  sp.py --dir D --name N serve [--sign-requests] [--no-soap]
      serves on a free port of 127.0.0.1 (printed as one line); the entity
      id is http://127.0.0.1:PORT/sp/metadata, the metadata is written to
      D/N.xml. Keys: D/N-key.pem and D/N-cert.pem (signing and
      encryption). The ENT's metadata is read from D/idp.xml at each call.

      Paths below, also under /sp/ (where the metadata puts them):
      GET  /start?binding=redirect|post[&force=1][&passive=1][&unsigned=1]
           an AuthnRequest: a redirect to the IdP, or for post a JSON
           {"action", "SAMLRequest", "RelayState"} to post.
      POST /acs  the IdP's response, checked by pysaml2 with the IdP's
           metadata: 200 JSON {"name_id", "name_id_format",
           "session_index", "attributes", "in_response_to"}; 403 otherwise.
      GET  /start-logout?name_id=..&format=..&session_index=..[&unsigned=1]
           a LogoutRequest to the IdP (HTTP-Redirect, signed unless asked).
      GET  /start-soap-logout?name_id=..&format=..&session_index=..[&unsigned=1][&to=URL]
           a LogoutRequest to the IdP by SOAP (signed unless asked), sent
           to URL when given (the metadata's address otherwise): 200
           JSON {"http", "status"} (the IdP's HTTP status and, when it
           answered a LogoutResponse, its checked status code).
      GET  /slo  the IdP's LogoutResponse: 200 JSON {"status"}; or the
           IdP's LogoutRequest by HTTP-Redirect (front channel), its
           signatures checked, logged to D/N-logouts.log as JSON lines
           ({"name_id", "session_index", "signed", "relay_state"}) and
           answered by a signed LogoutResponse redirected to the IdP
           (status Success; Responder with --refuse-logout).
      POST /soap-slo  the IdP's LogoutRequest by SOAP (back-channel),
           logged to D/N-logouts.log as JSON lines, answered by SOAP.
"""

import argparse
import base64
import json
import os
import re
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import saml2.saml
import saml2.samlp
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_SOAP, xmldsig
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT

OUTSTANDING = {}


def config(args):
    base = args.entity_id.rsplit("/", 1)[0]
    key = os.path.join(args.dir, f"{args.name}-key.pem")
    cert = os.path.join(args.dir, f"{args.name}-cert.pem")
    slo = [(base + "/slo", BINDING_HTTP_REDIRECT)]
    if not args.no_soap:
        slo.append((base + "/soap-slo", BINDING_SOAP))
    conf = {
        "entityid": args.entity_id,
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "key_file": key,
        "cert_file": cert,
        "encryption_keypairs": [{"key_file": key, "cert_file": cert}],
        "allow_unknown_attributes": True,
        "service": {
            "sp": {
                "endpoints": {
                    "assertion_consumer_service": [(base + "/acs", BINDING_HTTP_POST)],
                    "single_logout_service": slo,
                },
                "authn_requests_signed": args.sign_requests,
                "want_assertions_signed": True,
                "want_response_signed": False,
                "logout_requests_signed": True,
                "allow_unsolicited": True,
                "name_id_format": [NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT],
            }
        },
    }
    idp = os.path.join(args.dir, "idp.xml")
    if os.path.exists(idp):
        conf["metadata"] = {"local": [idp]}
    cfg = SPConfig()
    cfg.load(conf)
    return cfg


def idp_entity_id(client):
    return list(client.metadata.identity_providers())[0]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):
        pass

    def send(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def client(self):
        return Saml2Client(config=config(self.server.args))

    def route(self):
        """The path without the /sp prefix of the metadata's endpoints."""
        url = urlparse(self.path)
        path = url.path[3:] if url.path.startswith("/sp/") else url.path
        return url._replace(path=path)

    def do_GET(self):
        url = self.route()
        msg = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            if url.path == "/start":
                return self.start(msg)
            if url.path == "/start-logout":
                return self.start_logout(msg)
            if url.path == "/start-soap-logout":
                return self.start_soap_logout(msg)
            if url.path == "/slo" and "SAMLRequest" in msg:
                return self.front_logout(msg)
            if url.path == "/slo":
                return self.logout_response(msg)
        except Exception as e:
            return self.send(500, json.dumps({"error": repr(e)}))
        self.send(404, "{}")

    def start(self, msg):
        client = self.client()
        idp = idp_entity_id(client)
        binding = BINDING_HTTP_POST if msg.get("binding") == "post" else BINDING_HTTP_REDIRECT
        sign = msg.get("unsigned") != "1"
        extra = {}
        if msg.get("force") == "1":
            extra["force_authn"] = "true"
        if msg.get("passive") == "1":
            extra["is_passive"] = "true"
        destination = client._sso_location(idp, binding)
        reqid, request = client.create_authn_request(
            destination=destination,
            binding=BINDING_HTTP_POST,
            sign=sign and binding == BINDING_HTTP_POST,
            sign_alg=xmldsig.SIG_RSA_SHA256,
            digest_alg=xmldsig.DIGEST_SHA256,
            **extra,
        )
        OUTSTANDING[reqid] = "/"
        if binding == BINDING_HTTP_POST:
            body = {
                "action": destination,
                "SAMLRequest": base64.b64encode(str(request).encode()).decode(),
                "RelayState": "sp-relay",
                "id": reqid,
            }
            return self.send(200, json.dumps(body))
        info = client.apply_binding(
            BINDING_HTTP_REDIRECT, str(request), destination, "sp-relay", sign=sign, sigalg=xmldsig.SIG_RSA_SHA256
        )
        self.redirect(dict(info["headers"])["Location"])

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length).decode()
        url = self.route()
        if url.path == "/soap-slo":
            return self.soap_logout(raw)
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        if url.path != "/acs":
            return self.send(404, "{}")
        client = self.client()
        try:
            resp = client.parse_authn_request_response(form["SAMLResponse"], BINDING_HTTP_POST, dict(OUTSTANDING))
            if resp is None:
                raise ValueError("no response")
            info = resp.session_info()
        except Exception as e:
            return self.send(403, json.dumps({"error": repr(e)}))
        body = {
            "name_id": info["name_id"].text,
            "name_id_format": info["name_id"].format,
            "session_index": info.get("session_index"),
            "attributes": info["ava"],
            "in_response_to": resp.in_response_to,
            "relay_state": form.get("RelayState"),
            "encrypted": "EncryptedAssertion" in base64.b64decode(form["SAMLResponse"]).decode(),
            "authn_context": [a[0] for a in info.get("authn_info", [])],
        }
        self.send(200, json.dumps(body))

    def start_logout(self, msg):
        client = self.client()
        idp = idp_entity_id(client)
        destination = client.metadata.single_logout_service(idp, BINDING_HTTP_REDIRECT, "idpsso")[0]["location"]
        name_id = saml2.saml.NameID(format=msg.get("format", NAMEID_FORMAT_TRANSIENT), text=msg["name_id"])
        indexes = [msg["session_index"]] if msg.get("session_index") else None
        _, req = client.create_logout_request(destination, idp, name_id=name_id, session_indexes=indexes, sign=False)
        info = client.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(req),
            destination,
            "sp-relay",
            sign=msg.get("unsigned") != "1",
            sigalg=xmldsig.SIG_RSA_SHA256,
        )
        self.redirect(dict(info["headers"])["Location"])

    def start_soap_logout(self, msg):
        client = self.client()
        idp = idp_entity_id(client)
        destination = client.metadata.single_logout_service(idp, BINDING_SOAP, "idpsso")[0]["location"]
        name_id = saml2.saml.NameID(format=msg.get("format", NAMEID_FORMAT_TRANSIENT), text=msg["name_id"])
        indexes = [msg["session_index"]] if msg.get("session_index") else None
        sign = msg.get("unsigned") != "1"
        _, req = client.create_logout_request(
            destination,
            idp,
            name_id=name_id,
            session_indexes=indexes,
            sign=sign,
            sign_alg=xmldsig.SIG_RSA_SHA256,
            digest_alg=xmldsig.DIGEST_SHA256,
        )
        info = client.apply_binding(BINDING_SOAP, str(req), destination)
        http = urllib.request.Request(
            msg.get("to", destination), data=info["data"].encode(), headers={"Content-Type": "text/xml; charset=utf-8"}
        )
        try:
            with urllib.request.urlopen(http) as r:
                code, raw = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            code, raw = e.code, e.read().decode()
        if code != 200:
            return self.send(200, json.dumps({"http": code, "body": raw}))
        body = re.search(r"<soap:Body>(.*)</soap:Body>", raw, re.S).group(1)
        resp = client.parse_logout_request_response(base64.b64encode(body.encode()).decode(), BINDING_HTTP_POST)
        status = resp.response.status.status_code.value
        self.send(200, json.dumps({"http": code, "status": status}))

    def logout_response(self, msg):
        client = self.client()
        resp = client.parse_logout_request_response(msg["SAMLResponse"], BINDING_HTTP_REDIRECT)
        status = resp.response.status.status_code.value
        self.send(200, json.dumps({"status": status, "relay_state": msg.get("RelayState")}))

    def front_logout(self, msg):
        client = self.client()
        req = client.parse_logout_request(
            msg["SAMLRequest"],
            BINDING_HTTP_REDIRECT,
            relay_state=msg.get("RelayState"),
            sigalg=msg.get("SigAlg"),
            signature=msg.get("Signature"),
        )
        signed = bool(msg.get("Signature")) and req._do_redirect_sig_check(
            {k: msg[k] for k in ("SAMLRequest", "RelayState", "SigAlg", "Signature") if k in msg}
        )
        entry = {
            "name_id": req.message.name_id.text,
            "session_index": [i.text for i in req.message.session_index],
            "signed": signed and req.message.signature is not None,
            "relay_state": msg.get("RelayState"),
        }
        with open(os.path.join(self.server.args.dir, f"{self.server.args.name}-logouts.log"), "a") as f:
            f.write(json.dumps(entry) + "\n")
        idp = idp_entity_id(client)
        destination = client.metadata.single_logout_service(idp, BINDING_HTTP_REDIRECT, "idpsso")[0]["location"]
        status = None
        if self.server.args.refuse_logout:
            status = saml2.samlp.Status(status_code=saml2.samlp.StatusCode(value=saml2.samlp.STATUS_RESPONDER))
        resp = client.create_logout_response(req.message, [BINDING_HTTP_REDIRECT], status=status)
        info = client.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(resp),
            destination,
            msg.get("RelayState"),
            response=True,
            sign=True,
            sigalg=xmldsig.SIG_RSA_SHA256,
        )
        self.redirect(dict(info["headers"])["Location"])

    def soap_logout(self, raw):
        client = self.client()
        try:
            # The request is taken out of its envelope as sent: pysaml2's own
            # SOAP unpacking re-serialises it with other prefixes, which
            # changes what the signature covers.
            body = re.search(r"<soap:Body>(.*)</soap:Body>", raw, re.S).group(1)
            req = client.parse_logout_request(base64.b64encode(body.encode()).decode(), BINDING_HTTP_POST)
            if req is None:
                raise ValueError("no request")
        except Exception as e:
            return self.send(403, json.dumps({"error": repr(e)}))
        indexes = [i.text for i in req.message.session_index]
        with open(os.path.join(self.server.args.dir, f"{self.server.args.name}-logouts.log"), "a") as f:
            f.write(json.dumps({"name_id": req.message.name_id.text, "session_index": indexes}) + "\n")
        resp = client.create_logout_response(req.message, [BINDING_SOAP])
        info = client.apply_binding(BINDING_SOAP, str(resp), "", response=True)
        self.send(200, info["data"], "text/xml")


def serve(args):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    args.entity_id = f"http://127.0.0.1:{port}/sp/metadata"
    httpd.args = args
    with open(os.path.join(args.dir, f"{args.name}.xml"), "w") as f:
        f.write(create_metadata_string(None, config(args), sign=False).decode())
    print(port, flush=True)
    httpd.serve_forever()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--name", required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--sign-requests", action="store_true")
    s.add_argument("--no-soap", action="store_true")
    s.add_argument("--refuse-logout", action="store_true")
    args = parser.parse_args()
    serve(args)


if __name__ == "__main__":
    main()
