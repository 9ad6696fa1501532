"""The dashboard's HTTP service (FastAPI): a JSON API and the pages on top of it.

    whybox serve                               # the built-in demo on http://127.0.0.1:8765
    whybox serve --model m.skops --data d.csv --label y
    whybox serve --host 0.0.0.0 --token SECRET # any non-loopback address needs a token

With a token every request must carry it: ``Authorization: Bearer SECRET``, or ``?token=SECRET`` once
(the page then keeps it in an HttpOnly cookie).
"""

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Any

from whybox.app import pages
from whybox.app.state import AppState
from whybox.errors import InputError, WhyboxError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def capabilities() -> dict[str, bool]:
    """Panels appear only when their capability exists in this installation."""
    return {"counterfactuals": importlib.util.find_spec("whybox.counterfactuals") is not None,
            "narratives": True, "fairness": True}


def plotly_js() -> Path:
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the dashboard needs plotly (pip install 'whybox[app]')")
    return Path(list(spec.submodule_search_locations)[0]) / "package_data" / "plotly.min.js"


def demo_state() -> AppState:
    from whybox.datasets import demo

    d = demo()
    return AppState(d.model, d.X_test, d.y_test, name="demo: breast-cancer MLP", description=d.description)


def create_app(state: AppState | None = None, *, token: str | None = None, trust_pickle: bool = False,
               max_upload_mb: float = 50.0):
    """The FastAPI application serving ``state`` (default: the built-in demo)."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
    except ImportError:
        raise InputError("the dashboard needs fastapi and uvicorn (pip install 'whybox[app]')") from None

    st = state or demo_state()
    limit = int(max_upload_mb * 1024 * 1024)
    app = FastAPI(title="whybox", description="Explain a model, check the explanations, look for unfair gaps.",
                  version=__import__("whybox").__version__)
    app.state.whybox = st

    def wants_html(request: Request) -> bool:
        return not request.url.path.startswith("/api") and "text/html" in request.headers.get("accept", "text/html")

    def fail(request: Request, status: int, message: str):
        if wants_html(request):
            return HTMLResponse(pages.error_page(message, _safe_info(st), status), status_code=status)
        return JSONResponse({"error": message}, status_code=status)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if token:
            auth = request.headers.get("authorization", "")
            given = auth[7:] if auth.lower().startswith("bearer ") else None
            given = given or request.cookies.get("whybox_token") or request.query_params.get("token")
            if given != token:
                return fail(request, 401, "this server needs a token: send 'Authorization: Bearer <token>' "
                                          "or open the page with ?token=<token>")
        if request.method == "POST":
            size = request.headers.get("content-length")
            if size is not None and size.isdigit() and int(size) > limit:
                return fail(request, 413, f"the upload is {int(size) / 2**20:.1f} MB; the limit is {max_upload_mb:g} MB")
        try:
            resp = await call_next(request)
        except WhyboxError as exc:
            return fail(request, 400, str(exc))
        if token and request.query_params.get("token") == token:
            resp.set_cookie("whybox_token", token, httponly=True, samesite="strict")
        return resp

    @app.exception_handler(WhyboxError)
    async def whybox_error(request: Request, exc: WhyboxError):
        status = 404 if "out of range" in str(exc) else 400
        return fail(request, status, str(exc))

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception):
        return fail(request, 404, f"nothing at {request.url.path}")

    async def body(request: Request) -> dict[str, Any]:
        try:
            b = await request.json()
        except ValueError:
            raise InputError("the request body must be JSON") from None
        if not isinstance(b, dict):
            raise InputError("the request body must be a JSON object")
        return b

    # ------------------------------------------------------------------ static
    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_file():
        return FileResponse(plotly_js(), media_type="application/javascript")

    @app.get("/static/app.js", include_in_schema=False)
    def app_js():
        return Response(pages.APP_JS, media_type="application/javascript")

    # ------------------------------------------------------------------ API
    @app.get("/api/info")
    def info():
        return st.info()

    @app.post("/api/explain")
    async def api_explain(request: Request):
        """Explain a row (``row``), optionally with changed ``features`` (what-if), by ``method``."""
        b = await body(request)
        return st.explain_row(b.get("row", 0), b.get("features") or {}, b.get("method"))

    @app.post("/api/narrate")
    async def api_narrate(request: Request):
        b = await body(request)
        import whybox
        e = st.explain(st.frame_from(b.get("row", 0), b.get("features") or {}), b.get("method"))
        return whybox.narrate(e, audience=b.get("audience", "lay")).to_dict()

    @app.post("/api/evaluate")
    async def api_evaluate(request: Request):
        """Score methods on rows (``rows``: list or "a:b", at most 50) with ``metrics``."""
        b = await body(request)
        import whybox
        from whybox.io.files import parse_rows
        rows = b.get("rows", "0:10")
        idx = parse_rows(rows, st.n_rows) if isinstance(rows, str) else [st.check_row(r) for r in rows]
        if len(idx) > 50:
            raise InputError(f"at most 50 rows per evaluation request, got {len(idx)}")
        methods = b.get("methods") or [st.method, "lime"]
        metrics = b.get("metrics") or ["pgi", "pgu", "fidelity"]
        table = whybox.evaluate(st.model, st.X.iloc[idx], methods, metrics=metrics, background=st.background,
                                seed=st.seed, target=st.focus)
        return {"rows": len(idx), "table": table.reset_index().to_dict(orient="records")}

    @app.post("/api/counterfactuals")
    async def api_counterfactuals(request: Request):
        if not capabilities()["counterfactuals"]:
            return JSONResponse({"error": "counterfactuals are not available in this version of whybox"}, status_code=501)
        b = await body(request)
        from whybox.app.cf import counterfactual_payload
        return counterfactual_payload(st, b)

    @app.post("/api/fairness")
    async def api_fairness(request: Request):
        b = await body(request)
        from whybox.app.fairness import fairness_report
        return fairness_report(st, str(b.get("attribute", "")), n_explain=int(b.get("n_explain", 30)))

    @app.post("/api/jobs/explain")
    async def api_job(request: Request):
        """Explain many rows in the background; poll /api/jobs/{id}."""
        b = await body(request)
        from whybox.io.files import parse_rows
        rows = parse_rows(str(b.get("rows", f"0:{min(st.n_rows, 100)}")), st.n_rows)
        return st.explain_many(list(rows), b.get("method")).to_dict()

    @app.post("/api/jobs/overview")
    def api_overview_job():
        return st.global_view().to_dict()

    @app.get("/api/jobs/{job_id}")
    def api_job_status(job_id: str):
        job = st.jobs.get(job_id)
        if job is None:
            raise InputError(f"no job {job_id!r}")
        return job.to_dict()

    @app.get("/api/global")
    def api_global():
        g = st.global_summary()
        if g is None:
            raise InputError("the overview job has not finished yet")
        return g

    @app.post("/api/upload")
    async def api_upload(request: Request):
        """Replace the model and data (multipart: ``model`` .skops/.joblib, ``data`` .csv/.parquet, ``label``)."""
        form = await request.form()
        mf, df = form.get("model"), form.get("data")
        if mf is None or df is None or not getattr(mf, "filename", "") or not getattr(df, "filename", ""):
            raise InputError("upload both a model file and a data file")
        new = await _load_upload(mf, df, str(form.get("label") or "").strip() or None, trust_pickle, limit)
        st.load(*new["args"], name=new["name"], description=new["description"])
        return {"name": st.name, "rows": st.n_rows, "features": list(st.spec.names)}

    # ------------------------------------------------------------------ pages
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page_overview():
        return pages.overview(st.info(), max_upload_mb)

    @app.get("/row/{row}", response_class=HTMLResponse, include_in_schema=False)
    def page_row(row: str, method: str | None = None):
        r = st.check_row(row)
        payload = st.explain_row(r, {}, method)
        scores = st.outputs[:, st.focus]
        table = [{"row": i, "score": float(scores[i]), "predicted": str(st.output_names[st.classes[i]]),
                  "search": f"row {i} {st.output_names[st.classes[i]]} {scores[i]:.3f}".lower()} for i in range(st.n_rows)]
        return pages.row_page(st.info(), r, payload, table)

    @app.get("/fairness", response_class=HTMLResponse, include_in_schema=False)
    def page_fairness(attribute: str | None = None):
        from whybox.app.fairness import fairness_report
        rep = fairness_report(st, attribute) if attribute else None
        return pages.fairness_page(st.info(), list(st.X.columns), attribute, rep)

    # ------------------------------------------------------------------ reports
    @app.get("/report/{which}", include_in_schema=False)
    def report(which: str, attribute: str | None = None):
        from whybox.app.reports import fairness_report_html, overview_report_html
        if which == "overview":
            html = overview_report_html(st)
        elif which == "fairness":
            if not attribute:
                raise InputError("pick an attribute first (/report/fairness?attribute=...)")
            html = fairness_report_html(st, attribute)
        else:
            raise InputError(f"no report {which!r}")
        return HTMLResponse(html, headers={"Content-Disposition": f"attachment; filename=whybox-{which}.html"})

    @app.get("/report/row/{row}", include_in_schema=False)
    def report_row(row: str):
        from whybox.app.reports import row_report_html
        r = st.check_row(row)
        return HTMLResponse(row_report_html(st, r), headers={"Content-Disposition": f"attachment; filename=whybox-row-{r}.html"})

    return app


def _safe_info(st: AppState) -> dict[str, Any] | None:
    try:
        return st.info()
    except Exception:  # noqa: BLE001
        return None


async def _load_upload(mf: Any, df: Any, label: str | None, trust_pickle: bool, limit: int) -> dict[str, Any]:
    from whybox.io.files import PICKLE_EXT, load_model, load_table

    mname, dname = os.path.basename(mf.filename), os.path.basename(df.filename)
    if not mname.endswith((".skops",) + PICKLE_EXT):
        raise InputError(f"the model file {mname!r} must be .skops (or .joblib/.pkl when the server trusts pickles)")
    if not dname.endswith((".csv", ".parquet")):
        raise InputError(f"the data file {dname!r} must be .csv or .parquet")
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for f, name in ((mf, mname), (df, dname)):
            raw = await f.read(limit + 1)
            if len(raw) > limit:
                raise InputError(f"{name} is larger than the upload limit of {limit / 2**20:g} MB")
            p = Path(tmp) / name
            p.write_bytes(raw)
            paths.append(p)
        model = load_model(paths[0], trust_pickle=trust_pickle)
        table = load_table(paths[1])
    y = None
    if label:
        if label not in table.columns:
            raise InputError(f"the data has no label column {label!r}; its columns are {list(table.columns)}")
        y = table.pop(label).to_numpy()
    cols = getattr(model, "feature_names_in_", None)
    if cols is not None:
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise InputError(f"the data is missing column(s) {missing} that the model was trained on")
        table = table[list(cols)]
    return {"args": (model, table, y), "name": mname, "description": f"{mname} on {dname} ({len(table)} rows)"}


def serve(state: AppState | None = None, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          trust_pickle: bool = False, max_upload_mb: float = 50.0) -> None:
    """Run the dashboard with uvicorn (blocking)."""
    if host not in LOOPBACK and not token:
        raise InputError(f"binding to {host} exposes the dashboard beyond this machine: pass --token")
    import uvicorn

    uvicorn.run(create_app(state, token=token, trust_pickle=trust_pickle, max_upload_mb=max_upload_mb),
                host=host, port=port, log_level="warning")


