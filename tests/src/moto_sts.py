"""moto's server over TLS, as `moto_server -c -k` runs it, with one adapter: AWS STS takes an
unsigned AssumeRoleWithWebIdentity's parameters from the query string (object_store sends them
so), moto reads them only from a form body. A POST with a query and no body gets the query as
its body; moto's own STS answers. Usage: moto_sts.py PORT CERT KEY"""
import io
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


class QueryAsForm:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        query = environ.get("QUERY_STRING", "")
        empty = int(environ.get("CONTENT_LENGTH") or 0) == 0
        if environ["REQUEST_METHOD"] == "POST" and query and empty:
            body = query.encode()
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
            environ["QUERY_STRING"] = ""
        return self.app(environ, start_response)


port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
app = QueryAsForm(DomainDispatcherApplication(create_backend_app))
run_simple("127.0.0.1", port, app, threaded=True, ssl_context=(cert, key))
