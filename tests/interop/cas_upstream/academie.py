"""The académie's CAS server for tests/api/upstream.rs: django-cas-server
(PyPI) on Django's WSGI server.

Creates its database in CAS_UPSTREAM_DIR, a user (--login, --password,
e-mail <login>@ac-orleans-tours.fr) and a service pattern for the ENT's
callbacks that releases the e-mail; then serves on 127.0.0.1, on a free
port it prints as one line before serving."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

from cas_server.models import ReplaceAttributName, ServicePattern  # noqa: E402


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--login", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--service-pattern", required=True)
    args = parser.parse_args()

    call_command("migrate", verbosity=0, interactive=False)
    User.objects.create_user(args.login, f"{args.login}@ac-orleans-tours.fr", args.password)
    pattern = ServicePattern.objects.create(name="ent", pattern=args.service_pattern, single_log_out=False)
    ReplaceAttributName.objects.create(name="email", replace="mail", service_pattern=pattern)

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler)
    server.set_app(get_wsgi_application())
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
