"""A real SMTP server (aiosmtpd) for the black-box tests: every message it
receives is written, as received, to OUT_DIR/<n>.eml.

Usage: smtp_sink.py PORT OUT_DIR [USER:PASSWORD]   (prints "ready" once
listening). With USER:PASSWORD, authentication (PLAIN or LOGIN, without
TLS: a test only) is required and checked. With the environment variables
SINK_TLS_CERT and SINK_TLS_KEY (PEM files), STARTTLS is offered and required,
or, with SINK_TLS_MODE=wrapper, the whole connection is TLS.
"""
import os
import ssl
import sys
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, out):
        self.out = out

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # A recipient that does not exist, for the permanent-failure test.
        if address.startswith("inconnu"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(self.out, "%d.eml" % time.time_ns())
        with open(name + ".tmp", "wb") as f:
            f.write(b"X-Envelope-From: " + envelope.mail_from.encode() + b"\r\n")
            f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            login = getattr(session.auth_data, "login", None)
            if login:
                f.write(b"X-Auth-User: " + login + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        os.rename(name + ".tmp", name)
        return "250 Message accepted for delivery"


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    options = {}
    if len(sys.argv) > 3:
        user, password = sys.argv[3].encode().split(b":", 1)

        def check(server, session, envelope, mechanism, auth_data):
            ok = getattr(auth_data, "login", None) == user and getattr(auth_data, "password", None) == password
            return AuthResult(success=ok, auth_data=auth_data)

        # Plain-text AUTH is what this test server is for.
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
        options = {"authenticator": check, "auth_required": True, "auth_require_tls": False}
    if os.environ.get("SINK_TLS_CERT"):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(os.environ["SINK_TLS_CERT"], os.environ["SINK_TLS_KEY"])
        if os.environ.get("SINK_TLS_MODE") == "wrapper":
            # Implicit TLS (port 465 style).
            options.update({"ssl_context": context})
        else:
            options.update({"tls_context": context, "require_starttls": True})
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port, **options)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
