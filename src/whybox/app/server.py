"""The dashboard's HTTP service (FastAPI): a JSON API and the pages on top of it.

    whybox serve                               # the built-in demo on http://127.0.0.1:8765/?token=...
    whybox serve --model m.skops --data d.csv --label y
    whybox serve --host 0.0.0.0 --token SECRET # any non-loopback address needs a token you choose

Every request needs the server's token (a random one is made and printed when none is given); the
door checks (Host, token, Origin, body size) are in :mod:`whybox.app.security`. CPU work runs in a
bounded pool of worker threads (one per core): when it and its queue are full, the API answers 429
with ``Retry-After`` instead of blocking the event loop.
"""

import asyncio
import functools
import html
import importlib.util
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, Optional, Union

from whybox.app import pages
from whybox.app.security import LOOPBACK_HOSTS, Guard, allowed_hosts, new_token
from whybox.app.state import AppState, Busy, capabilities
from whybox.errors import InputError, WhyboxError

LOOPBACK = LOOPBACK_HOSTS


def plotly_js() -> Path:
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the dashboard needs plotly (pip install 'whybox[app]')")
    return Path(list(spec.submodule_search_locations)[0]) / "package_data" / "plotly.min.js"


def demo_state(which: str = "census") -> AppState:
    """The built-in demos: "census" (synthetic census-like income data with a protected attribute, a
    planted proxy and a planted bias; the default) or "breast-cancer" (scikit-learn's)."""
    if which == "census":
        from whybox.datasets import census_demo

        d = census_demo()
        return AppState(d.model, d.X_test, d.y_test, name="demo: synthetic census income (LogisticRegression)",
                        description=d.description, X_train=d.X_train, y_train=d.y_train, protected=["sex", "race"])
    if which == "breast-cancer":
        from whybox.datasets import demo

        d = demo()
        return AppState(d.model, d.X_test, d.y_test, name="demo: breast-cancer MLP", description=d.description,
                        X_train=d.X_train, y_train=d.y_train, class_names=["malignant", "benign"])
    raise InputError(f"unknown demo {which!r}: census or breast-cancer")


class WorkerPool:
    """A bounded pool of worker threads for CPU work, with a bounded queue in front of it.

    ``run`` is awaited on the event loop; when ``workers + queue`` calls are already in flight it
    raises :class:`Busy` at once (the API answers 429 with Retry-After)."""

    def __init__(self, workers: int | None = None, queue: int | None = None):
        self.workers = int(workers or os.cpu_count() or 1)
        self.capacity = self.workers + int(self.workers * 4 if queue is None else queue)
        self.executor = ThreadPoolExecutor(self.workers, thread_name_prefix="whybox-worker")
        self.in_flight = 0

    async def run(self, fn: Any, *args: Any, **kw: Any) -> Any:
        if self.in_flight >= self.capacity:
            raise Busy(f"the server is busy ({self.in_flight} requests in progress); try again shortly")
        self.in_flight += 1                      # only ever touched on the event loop's thread
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(fn, *args, **kw))
        finally:
            self.in_flight -= 1


def _bodies():
    """The API's request bodies as pydantic models: wrong types and unknown fields give 422 naming the field."""
    from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

    Value = Union[StrictInt, StrictFloat, StrictStr]

    class Body(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class Explain(Body):
        row: StrictInt = Field(0, ge=0, description="the data row to explain")
        features: dict[StrictStr, Value] = Field(default_factory=dict, description="what-if: feature -> new value")
        method: Optional[StrictStr] = Field(None, description="explanation method (default: the server's)")

    class Narrate(Explain):
        audience: Literal["lay", "expert"] = "lay"

    class Evaluate(Body):
        rows: Union[StrictStr, list[StrictInt]] = Field("0:10", description="'a:b', 'i,j,k' or a list (at most 50)")
        methods: Optional[list[StrictStr]] = Field(None, min_length=1, max_length=12)
        metrics: Optional[list[StrictStr]] = Field(None, min_length=1, max_length=12)

    class Counterfactuals(Body):
        row: StrictInt = Field(0, ge=0)
        features: dict[StrictStr, Value] = Field(default_factory=dict)
        k: StrictInt = Field(3, ge=1, le=10, description="how many counterfactuals")
        desired_class: Optional[Union[StrictInt, StrictStr]] = None
        immutable: list[StrictStr] = Field(default_factory=list)

    class Fairness(Body):
        attribute: StrictStr
        n_explain: StrictInt = Field(30, ge=2, le=500, description="rows explained per group")

    class Flip(Body):
        attribute: StrictStr
        proxies: Union[Literal["auto"], list[StrictStr]] = Field(default_factory=list,
                                                                 description="columns changed with it, or 'auto'")

    class Remedies(Body):
        attribute: StrictStr
        constraint: Literal["demographic_parity", "equal_opportunity"] = "demographic_parity"

    class Job(Body):
        rows: Optional[StrictStr] = Field(None, description="'a:b' or 'i,j,k' (default: the first 100)")
        method: Optional[StrictStr] = None

    class Empty(Body):
        pass

    class Row(Body):
        row: StrictInt = Field(0, ge=0, description="the data row")

    class Surrogate(Body):
        kind: Literal["tree", "rules", "linear"] = "tree"
        max_depth: StrictInt = Field(3, ge=1, le=8, description="depth of a tree summary")
        budget: StrictInt = Field(3000, ge=1000, le=50_000, description="model queries to spend")

    return Explain, Narrate, Evaluate, Counterfactuals, Fairness, Job, Empty, Surrogate, Row, Flip, Remedies


def create_app(state: AppState | None = None, *, token: str | None = None, trust_pickle: bool = False,
               max_upload_mb: float = 50.0, host: str = "127.0.0.1", allowed_host: tuple[str, ...] = (),
               allowed_origin: tuple[str, ...] = (), workers: int | None = None, queue: int | None = None):
    """The dashboard as an ASGI application serving ``state`` (default: the built-in demo).

    ``token`` None makes a random one (``app.state.token``). ``trust_pickle`` is accepted for
    the command line's sake but never applies to uploads: an uploaded model must be .skops."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
    except ImportError:
        raise InputError("the dashboard needs fastapi and uvicorn (pip install 'whybox[app]')") from None

    st = state or demo_state()
    token = token or new_token()
    limit = int(max_upload_mb * 1024 * 1024)
    pool = WorkerPool(workers, queue)
    Explain, Narrate, Evaluate, Counterfactuals, Fairness, JobBody, Empty, SurrogateBody, RowBody, Flip, Remedies = _bodies()
    app = FastAPI(title="whybox", description="Explain a model, check the explanations, look for unfair gaps.",
                  version=__import__("whybox").__version__, docs_url=None, redoc_url=None)
    app.state.whybox, app.state.token, app.state.pool = st, token, pool

    def is_api(path: str) -> bool:
        return path.startswith("/api") or path == "/openapi.json"

    def fail(request: Request, status: int, message: str, headers: dict | None = None):
        if not is_api(request.url.path) and "text/html" in request.headers.get("accept", "text/html"):
            return HTMLResponse(pages.error_page(message, _safe_info(st), status), status_code=status, headers=headers)
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def render_error(scope: dict, status: int, message: str):
        return fail(Request(scope), status, message)

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy):
        return fail(request, 429, str(exc), headers={"Retry-After": "1"})

    @app.exception_handler(WhyboxError)
    async def whybox_error(request: Request, exc: WhyboxError):
        status = 404 if "out of range" in str(exc) else 400
        return fail(request, status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        where = lambda e: ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"  # noqa: E731
        msg = "; ".join(f"{where(e)}: {e.get('msg', 'invalid')}" for e in errs[:5]) or "invalid request"
        return JSONResponse({"error": msg, "fields": [where(e) for e in errs]}, status_code=422)

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception):
        return fail(request, 404, f"nothing at {request.url.path}")

    @app.exception_handler(405)
    async def not_allowed(request: Request, exc: Exception):
        return fail(request, 405, f"{request.method} is not allowed on {request.url.path}")

    # ------------------------------------------------------------------ static
    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_file():
        return FileResponse(plotly_js(), media_type="application/javascript")

    @app.get("/static/app.js", include_in_schema=False)
    def app_js():
        return Response(pages.APP_JS, media_type="application/javascript")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return HTMLResponse(_docs_page(app.openapi()))

    # ------------------------------------------------------------------ API
    @app.get("/api/info")
    def info():
        """The model, its data and this server's worker pool."""
        return {**st.info(), "workers": pool.workers}

    @app.post("/api/explain")
    async def api_explain(b: Explain):
        """Explain a row (``row``), optionally with changed ``features`` (what-if), by ``method``."""
        return await pool.run(st.explain_row, b.row, b.features, b.method)

    @app.post("/api/narrate")
    async def api_narrate(b: Narrate):
        """A verified plain-language narrative of one row's explanation."""
        def work():
            import whybox
            e = st.explain(st.frame_from(b.row, b.features), b.method)
            return whybox.narrate(e, audience=b.audience).to_dict()
        return await pool.run(work)

    @app.post("/api/evaluate")
    async def api_evaluate(b: Evaluate):
        """Score methods on rows (``rows``: list or "a:b", at most 50) with ``metrics``."""
        from whybox.io.files import parse_rows
        idx = parse_rows(b.rows, st.n_rows) if isinstance(b.rows, str) else [st.check_row(r) for r in b.rows]
        if len(idx) > 50:
            raise InputError(f"at most 50 rows per evaluation request, got {len(idx)}")

        def work():
            import whybox
            methods = b.methods or [st.method, "lime"]
            metrics = b.metrics or ["pgi", "pgu", "fidelity"]
            table = whybox.evaluate(st.model, st.X.iloc[idx], methods, metrics=metrics, background=st.background,
                                    seed=st.seed, target_index=st.focus)
            return {"rows": len(idx), "table": table.reset_index().to_dict(orient="records")}
        return await pool.run(work)

    @app.post("/api/counterfactuals")
    async def api_counterfactuals(b: Counterfactuals):
        """Changes to a row that would change the model's decision."""
        if not capabilities()["counterfactuals"]:
            return JSONResponse({"error": "counterfactuals are not available in this version of whybox"}, status_code=501)
        from whybox.app.cf import counterfactual_payload
        return await pool.run(counterfactual_payload, st, b.model_dump())

    @app.post("/api/fairness")
    async def api_fairness(b: Fairness):
        """Group gaps of the model's decisions and of its explanations, by ``attribute``."""
        from whybox.app.fairness import fairness_report
        return await pool.run(fairness_report, st, b.attribute, n_explain=b.n_explain)

    @app.post("/api/fairness/flip")
    async def api_flip(b: Flip):
        """Whose decision changes when only ``attribute`` (and ``proxies``) are different."""
        from whybox.app.fairness import flip_payload
        return await pool.run(flip_payload, st, b.attribute, b.proxies)

    @app.post("/api/fairness/remedies")
    async def api_remedies(b: Remedies):
        """Remedies for the gap by ``attribute`` under ``constraint``, each with its price."""
        from whybox.app.fairness import public, remedies_payload
        return public(await pool.run(remedies_payload, st, b.attribute, b.constraint))

    @app.post("/api/choose")
    async def api_choose(b: RowBody):
        """The explanation method that is most faithful for a row (its local R²), ranked."""
        return await pool.run(st.better_method, b.row)

    @app.post("/api/rule")
    async def api_rule(b: RowBody):
        """A rule (anchor) under which the model keeps its answer for a row, and similar rows it treats the same way."""
        return await pool.run(st.rule_and_examples, b.row)

    @app.post("/api/surrogate")
    async def api_surrogate(b: SurrogateBody):
        """The whole model summarised as a tree, a rule list or a sparse linear model, with its fidelity."""
        return await pool.run(st.whole_model, b.kind, b.max_depth, b.budget)

    @app.post("/api/jobs/explain")
    async def api_job(b: JobBody):
        """Explain many rows in the background; poll /api/jobs/{id}."""
        from whybox.io.files import parse_rows
        rows = parse_rows(b.rows or f"0:{min(st.n_rows, 100)}", st.n_rows)
        return st.explain_many(list(rows), b.method).to_dict()

    @app.post("/api/jobs/overview")
    def api_overview_job(b: Optional[Empty] = None):
        """Start (once) the overview's job: explanations of up to 200 rows."""
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
        """Replace the model and data (multipart: ``model`` .skops, ``data`` .csv/.parquet, ``label``).
        Uploaded models are never unpickled, whatever the server was started with."""
        form = await request.form(max_part_size=limit)
        mf, df = form.get("model"), form.get("data")
        if mf is None or df is None or not getattr(mf, "filename", "") or not getattr(df, "filename", ""):
            raise InputError("upload both a model file and a data file")
        files = (os.path.basename(mf.filename), await mf.read()), (os.path.basename(df.filename), await df.read())
        label = str(form.get("label") or "").strip() or None
        new = await pool.run(_load_upload, files, label)
        await pool.run(st.load, *new["args"], name=new["name"], description=new["description"])
        return {"name": st.name, "rows": st.n_rows, "features": list(st.spec.names)}

    # ------------------------------------------------------------------ pages
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page_overview():
        return pages.overview(st.info(), max_upload_mb)

    @app.get("/row/{row}", response_class=HTMLResponse, include_in_schema=False)
    async def page_row(row: str, method: str | None = None):
        r = st.check_row(row)
        payload = await pool.run(st.explain_row, r, {}, method)
        scores = st.outputs[:, st.focus]
        table = [{"row": i, "score": float(scores[i]), "predicted": st.predicted(i),
                  "search": f"row {i} {st.predicted(i)} {scores[i]:.3f}".lower()} for i in range(st.n_rows)]
        return pages.row_page(st.info(), r, payload, table)

    @app.get("/fairness", response_class=HTMLResponse, include_in_schema=False)
    async def page_fairness(attribute: str | None = None):
        from whybox.app.fairness import fairness_report
        rep = await pool.run(fairness_report, st, attribute) if attribute else None
        cols = st.protected + [c for c in st.X.columns if c not in st.protected]
        return pages.fairness_page(st.info(), cols, attribute, rep)

    @app.get("/whole", response_class=HTMLResponse, include_in_schema=False)
    def page_whole():
        return pages.whole_page(st.info())

    # ------------------------------------------------------------------ reports
    @app.get("/report/{which}", include_in_schema=False)
    async def report(which: str, attribute: str | None = None, constraint: str = "demographic_parity"):
        from whybox.app.reports import fairness_report_html, overview_report_html
        if which == "overview":
            page = await pool.run(overview_report_html, st)
        elif which == "fairness":
            if not attribute:
                raise InputError("pick an attribute first (/report/fairness?attribute=...)")
            if constraint not in ("demographic_parity", "equal_opportunity"):
                raise InputError(f"constraint must be demographic_parity or equal_opportunity, got {constraint!r}")
            page = await pool.run(fairness_report_html, st, attribute, constraint)
        else:
            raise InputError(f"no report {which!r}")
        return HTMLResponse(page, headers={"Content-Disposition": f"attachment; filename=whybox-{which}.html"})

    @app.get("/report/row/{row}", include_in_schema=False)
    async def report_row(row: str):
        from whybox.app.reports import row_report_html
        r = st.check_row(row)
        page = await pool.run(row_report_html, st, r)
        return HTMLResponse(page, headers={"Content-Disposition": f"attachment; filename=whybox-row-{r}.html"})

    return Guard(app, token=token, hosts=allowed_hosts(host, allowed_host), origins=allowed_origin,
                 upload_limit=limit, render_error=render_error)


def _docs_page(spec: dict[str, Any]) -> str:
    """The API reference from the OpenAPI schema, with no external script or stylesheet."""
    e = html.escape
    rows = []
    for path, ops in spec.get("paths", {}).items():
        for verb, op in ops.items():
            body = op.get("requestBody", {}).get("content", {})
            ref = next(iter(body.values()), {}).get("schema", {}).get("$ref", "") if body else ""
            fields = ""
            if ref:
                schema = spec.get("components", {}).get("schemas", {}).get(ref.split("/")[-1], {})
                fields = ", ".join(f"<code>{e(k)}</code>" for k in schema.get("properties", {}))
            rows.append(f"<tr><td><b>{e(verb.upper())}</b></td><td><code>{e(path)}</code></td>"
                        f"<td>{e(op.get('description') or op.get('summary') or '')}</td><td>{fields}</td></tr>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>whybox API</title>"
            "<style>body{font-family:sans-serif;margin:2em}td{padding:4px 8px;border-bottom:1px solid #ddd;"
            "vertical-align:top}</style></head><body><h1>whybox API</h1><p>Machine-readable: "
            "<a href='/openapi.json'>/openapi.json</a>. Every request needs the server's token.</p>"
            "<table><tr><th>verb</th><th>path</th><th>what</th><th>body fields</th></tr>"
            + "".join(rows) + "</table></body></html>")


def _safe_info(st: AppState) -> dict[str, Any] | None:
    try:
        return st.info()
    except Exception:  # noqa: BLE001
        return None


def _load_upload(files: tuple[tuple[str, bytes], tuple[str, bytes]], label: str | None) -> dict[str, Any]:
    """Model and data from uploaded bytes. The model must be .skops (never a pickle, whatever the
    server was started with); it is checked for untrusted types before anything is built."""
    import tempfile

    from whybox.io.files import PICKLE_EXT, load_model, load_table

    (mname, mbytes), (dname, dbytes) = files
    if mname.endswith(PICKLE_EXT):
        raise InputError(f"the model file {mname!r} is a pickle: uploads never load pickles (they run code from "
                         "the file); save the model with skops (.skops)")
    if not mname.endswith(".skops"):
        raise InputError(f"the model file {mname!r} must be .skops")
    if not dname.endswith((".csv", ".parquet")):
        raise InputError(f"the data file {dname!r} must be .csv or .parquet")
    with tempfile.TemporaryDirectory() as tmp:
        mp = Path(tmp) / "model.skops"
        mp.write_bytes(mbytes)
        dp = Path(tmp) / ("data" + Path(dname).suffix)
        dp.write_bytes(dbytes)
        model = load_model(mp, trust_pickle=False)
        table = load_table(dp)
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
          trust_pickle: bool = False, max_upload_mb: float = 50.0, allowed_host: tuple[str, ...] = (),
          allowed_origin: tuple[str, ...] = (), echo: Any = print) -> None:
    """Run the dashboard with uvicorn (blocking). Without ``token`` a random one is made; the URL to
    open (with the token) is printed first."""
    from whybox.app.security import split_host

    if split_host(host) not in LOOPBACK and not token:
        raise InputError(f"binding to {host} exposes the dashboard beyond this machine: pass --token")
    import uvicorn

    token = token or new_token()
    app = create_app(state, token=token, trust_pickle=trust_pickle, max_upload_mb=max_upload_mb, host=host,
                     allowed_host=allowed_host, allowed_origin=allowed_origin)
    shown = f"[{host}]" if ":" in host else host
    echo(f"whybox dashboard: http://{shown}:{port}/?token={token}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
