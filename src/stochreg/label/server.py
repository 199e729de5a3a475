"""The labelling page's web application (Flask), over a LabelStore.

Every request must carry the page's token (``?token=`` or the ``X-Token`` header), made fresh each
time ``stochreg label`` starts and printed in the address, and a Host header naming the loopback
address it listens on (so that another web site cannot reach it through a name of its own that
points at 127.0.0.1). Images are served from the unlabelled folder only.

    GET  /                      the page
    GET  /api/state             classes, counts, the folder's name
    GET  /api/queue?start=&count=   the next images to answer, with the run's guesses
    GET  /image?file=           one unlabelled image
    POST /api/answer  {file, answer, new_class}   a class, "none" or "skip"
    POST /api/undo    {id}
"""
from __future__ import annotations

import io
import logging
import mimetypes
import secrets

from werkzeug.serving import BaseWSGIServer, make_server
from flask import Flask, abort, jsonify, request, send_file

from ..data.images import eight_bit, on_white, open_image
from ..errors import DataError
from .page import PAGE
from .store import LabelStore, Refused

LOOPBACK_NAMES = ("127.0.0.1", "localhost")
# What every current browser draws itself; other files (TIFF, HEIC, ...) are sent as PNG.
BROWSER_FORMATS = {".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".webp", ".bmp"}


def as_png(path) -> io.BytesIO:
    """An image a browser cannot draw, upright and in 8 bits as stochreg reads it, as PNG bytes; an
    unreadable one is refused with its reason."""
    from PIL import ImageOps
    try:
        with open_image(path) as image:
            picture = on_white(eight_bit(ImageOps.exif_transpose(image)))
            out = io.BytesIO()
            picture.convert("RGB" if picture.mode not in ("L", "RGB") else picture.mode).save(out, "PNG")
    except DataError as exc:
        raise Refused(str(exc), 415) from None
    out.seek(0)
    return out


def create_app(store: LabelStore, token: str) -> Flask:
    """The application for ``store``; ``app.config["PORT"]`` (once known) is the port the Host header
    must name."""
    app = Flask("stochreg.label")
    app.json.sort_keys = False

    @app.before_request
    def check_caller():
        host, port = request.host.rsplit(":", 1) if ":" in request.host else (request.host, None)
        if host not in LOOPBACK_NAMES or (app.config.get("PORT") and port != str(app.config["PORT"])):
            abort(403, description="this page answers on 127.0.0.1 only")
        given = request.args.get("token") or request.headers.get("X-Token") or ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            abort(403, description="wrong or missing token: open the address that stochreg label printed")

    @app.errorhandler(Refused)
    def refused(exc: Refused):
        return jsonify(error=str(exc)), exc.status

    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(400)
    def plain(exc):
        return jsonify(error=exc.description), exc.code

    @app.get("/")
    def page():
        return PAGE.replace("{{TOKEN}}", token), 200, {"Content-Type": "text/html; charset=utf-8",
                                                      "Cache-Control": "no-store"}

    @app.get("/api/state")
    def state():
        return jsonify(folder=store.root.name, classes=store.classes(), left=store.left(),
                       suggested=store.suggested)

    @app.get("/api/queue")
    def queue():
        start, count = request.args.get("start", "0"), request.args.get("count", "20")
        if not (start.isdigit() and count.isdigit()):
            raise Refused("start and count are whole numbers")
        items, after = store.waiting(int(start), min(int(count), 200))
        return jsonify(items=[vars(item) for item in items], next=after)

    @app.get("/image")
    def image():
        path = store.unlabelled_file(request.args.get("file", ""))
        if not path.is_file():
            raise Refused(f"{request.args['file']} is no longer in {store.unlabelled.name}/", 404)
        if path.suffix.lower() in BROWSER_FORMATS:
            return send_file(path, mimetype=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                             max_age=3600)
        return send_file(as_png(path), mimetype="image/png", max_age=3600)

    def body() -> dict:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise Refused("the request body is a JSON object")
        return data

    @app.post("/api/answer")
    def answer():
        data = body()
        if not isinstance(data.get("file"), str) or not isinstance(data.get("answer"), str):
            raise Refused("an answer names a file and a class (or none, or skip)")
        return jsonify(store.answer(data["file"], data["answer"], bool(data.get("new_class"))))

    @app.post("/api/undo")
    def undo():
        answer_id = body().get("id")
        if not isinstance(answer_id, int):
            raise Refused("an undo names the answer's id")
        return jsonify(store.undo(answer_id))

    return app


def start_server(store: LabelStore, port: int = 0) -> tuple[BaseWSGIServer, str]:
    """A threaded server for ``store`` on 127.0.0.1 (``port`` 0: a free one), not yet serving, and the
    page's address with a fresh token."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)   # no line per request in the person's terminal
    token = secrets.token_urlsafe(18)
    app = create_app(store, token)
    try:
        server = make_server("127.0.0.1", port, app, threaded=True)
    except OSError as exc:
        raise Refused(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; give another --port, or 0 for any free one")
    app.config["PORT"] = server.server_port
    return server, f"http://127.0.0.1:{server.server_port}/?token={token}"
