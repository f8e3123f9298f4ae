"""A minimal WSGI app, shipped by the gunicorn-app recipe: replace it with your own."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"Hello from gunicorn, deployed by Filrouge.\n"]
