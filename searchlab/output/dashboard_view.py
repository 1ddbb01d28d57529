"""What the dashboard's web server adds around optuna-dashboard, so that the view shows only what is true
of searchlab runs and offers only what the server does:

- every method but GET and HEAD is refused (405 with the reason): the view edits nothing;
- the page script (`SCRIPT`, added to optuna-dashboard's page) hides the controls that would write
  (create, rename and delete a study, fail a running trial, edit a note, the empty notes and the note page) and the hyperparameter importance
  card: importance over genome fields such as `ops[2]` measures nothing, since the same field holds a
  different vertex in cells of different shapes; the importance API answers with no parameters;
- `/dashboard/studies/N/trialTable`, a route of optuna-dashboard that renders an empty page, is sent to
  the page that holds the trials table (Smart Selection); the note page (notes cannot be written here, so
  it is always empty) is sent to the study's first page.
"""

from __future__ import annotations

import json
import re

SCRIPT_PATH = "/searchlab/dashboard.js"
_MOVED = {"trialTable": "/smartSelection", "note": ""}  # study pages with nothing to show -> where to go
_STUDY_PAGE = re.compile(r"^/dashboard/studies/(\d+)/(trialTable|note)/?$")
_IMPORTANCE = re.compile(r"^/api/studies/(\d+)/param_importances/?$")

# Runs in the page: hides what the read-only server refuses or what means nothing for a genome. It hides
# (never removes) the elements, so optuna-dashboard's own rendering is left undisturbed.
SCRIPT = r"""
(function () {
  var WRITE_ICONS = ["AddBoxIcon", "DriveFileRenameOutlineIcon", "DeleteIcon", "EditIcon", "UploadFileIcon"];
  var WRITE_LABELS = ["rename study", "delete study"];
  var WRITE_TEXTS = ["create", "fail trial", "skip", "unskip", "upload", "tell"];  // button captions
  var HIDDEN_CARDS = ["Hyperparameter Importance"];
  function hide(el) { if (el && el.style.display !== "none") { el.style.display = "none"; } }
  function card(el) {
    while (el && el.parentElement && !(el.classList && el.classList.contains("MuiCard-root"))) { el = el.parentElement; }
    return el;
  }
  function tidy() {
    WRITE_ICONS.forEach(function (name) {
      document.querySelectorAll('svg[data-testid="' + name + '"]').forEach(function (svg) {
        hide(svg.closest("button") || svg.closest('[role="button"]'));
      });
    });
    WRITE_LABELS.forEach(function (label) {
      document.querySelectorAll('[aria-label="' + label + '"]').forEach(hide);
    });
    document.querySelectorAll("button").forEach(function (b) {
      if (WRITE_TEXTS.indexOf(b.textContent.trim().toLowerCase()) >= 0) { hide(b); }
    });
    document.querySelectorAll('a[href$="/note"]').forEach(function (a) { hide(a.closest("li") || a); });
    document.querySelectorAll("h5, h6").forEach(function (h) {
      if (h.textContent.trim() === "Note") { hide(h); hide(h.nextElementSibling); }  // notes: never written here
      if (HIDDEN_CARDS.indexOf(h.textContent.trim()) >= 0) {
        var c = card(h);  // its grid cell too, when the card is all it holds, so the next card moves up
        hide(c && c.parentElement && c.parentElement.children.length === 1 ? c.parentElement : c);
      }
    });
  }
  new MutationObserver(tidy).observe(document.documentElement, { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", tidy);
})();
"""


def view_app(app, storage):
    """optuna-dashboard's WSGI `app` over `storage`, read-only and with the page script (module docstring)."""
    def guarded(environ, start_response):
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        if method not in ("GET", "HEAD"):
            return _json(start_response, "405 Method Not Allowed",
                         {"reason": "this dashboard is a read-only view of searchlab runs"}, [("Allow", "GET, HEAD")])
        if path == SCRIPT_PATH:
            body = SCRIPT.encode()
            start_response("200 OK", [("Content-Type", "text/javascript; charset=utf-8"),
                                      ("Content-Length", str(len(body))), ("Cache-Control", "no-cache")])
            return [body]
        moved = _STUDY_PAGE.match(path)
        if moved:
            target = f"/dashboard/studies/{moved.group(1)}{_MOVED[moved.group(2)]}"
            start_response("302 Found", [("Location", target), ("Content-Length", "0")])
            return [b""]
        importance = _IMPORTANCE.match(path)
        if importance:
            try:
                objectives = len(storage.get_study_directions(int(importance.group(1))))
            except KeyError:
                return _json(start_response, "404 Not Found", {"reason": f"study_id={importance.group(1)} is not found"})
            return _json(start_response, "200 OK", {"param_importances": [[] for _ in range(objectives)]})
        if path == "/dashboard" or path.startswith("/dashboard/"):
            return _with_script(app, environ, start_response)
        return app(environ, start_response)
    return guarded


def _json(start_response, status: str, data: dict, headers: list | None = None):
    body = json.dumps(data).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))] + (headers or []))
    return [body]


def _with_script(app, environ, start_response):
    """optuna-dashboard's page, with SCRIPT_PATH loaded after its own script (its headers kept, CSP included)."""
    captured: dict = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    result = app(environ, capture)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    if captured.get("status", "").startswith("200") and b"</head>" in body:
        body = body.replace(b"</head>", f'<script defer src="{SCRIPT_PATH}"></script></head>'.encode(), 1)
    headers = [(k, v) for k, v in captured.get("headers", []) if k.lower() != "content-length"]
    start_response(captured.get("status", "500 Internal Server Error"), headers + [("Content-Length", str(len(body)))])
    return [body] if environ.get("REQUEST_METHOD") != "HEAD" else [b""]
