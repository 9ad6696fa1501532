"""The dashboard: the JSON API with httpx against a real server on 127.0.0.1, and the pages in a real
headless Chromium (Debian's, driven by Playwright with executable_path; never a downloaded browser)."""
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi", reason="the dashboard needs fastapi (pip install 'whybox[app]')")
httpx = pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``whybox serve`` in a subprocess; the token is read from the URL it prints at start."""

    def __init__(self, *args, env=None):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "whybox.cli", "serve", "--port", str(self.port), *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "COLUMNS": "300", **(env or {})})
        self.lines = []
        threading.Thread(target=lambda: [self.lines.append(ln) for ln in self.proc.stdout], daemon=True).start()
        self.token = None
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise RuntimeError("server exited: " + "".join(self.lines))
            found = [m.group(1) for ln in self.lines for m in [re.search(r"/\?token=(\S+)", ln)] if m]
            if found:
                self.token = found[0]
                try:
                    httpx.get(self.url + "/api/info", timeout=2, headers=self.headers())
                    return
                except httpx.HTTPError:
                    pass
            time.sleep(0.3)
        raise RuntimeError("server did not start: " + "".join(self.lines))

    def headers(self):
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kw):
        return httpx.Client(base_url=self.url, timeout=kw.pop("timeout", 60), headers=self.headers(), **kw)

    def page_url(self, path="/"):
        return f"{self.url}{path}{'&' if '?' in path else '?'}token={self.token}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def server():
    s = Server("--demo", "breast-cancer")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def census_server():
    s = Server()                                 # the default demo: synthetic census with protected attributes
    yield s
    s.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier
    d = tmp_path_factory.mktemp("app")
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.integers(18, 80, 300).astype(float), "income": rng.normal(50, 15, 300),
                      "<script>alert(1)</script>": rng.integers(0, 2, 300).astype(float)})
    y = ((X["income"] > 50) ^ (X["<script>alert(1)</script>"] > 0.5)).astype(int)
    model = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)
    sio.dump(model, d / "m.skops")
    df = X.assign(label=y)
    df.to_csv(d / "data.csv", index=False)
    df.drop(columns=["income"]).to_csv(d / "missing.csv", index=False)
    (d / "model.txt").write_text("not a model")
    return d


# ------------------------------------------------------------------------------------------ API
def test_api(server):
    c = server.client()
    info = c.get("/api/info").json()
    assert info["rows"] == 143 and len(info["features"]) == 30 and info["accuracy"] > 0.9
    assert info["outputs"] == ["malignant", "benign"] and info["focus"] == "benign"      # names, not codes
    r = c.post("/api/explain", json={"row": 5}).json()
    assert len(r["features"]) == 30 and r["narrative"]["ok"] and 0 <= r["prediction"] <= 1
    assert r["predicted_class"] in ("malignant", "benign") and r["trust"] and r["trust_level"] in ("good", "fair", "rough", "poor")
    top = r["features"][0]["name"]
    w = c.post("/api/explain", json={"row": 5, "features": {top: r["features"][0]["value"] * 3}}).json()
    assert w["prediction"] != r["prediction"] and w["changed"] == [top]
    n = c.post("/api/narrate", json={"row": 5, "audience": "expert"}).json()
    assert n["ok"] and "attribution" in n["text"]
    ev = c.post("/api/evaluate", json={"rows": "0:4", "methods": ["kernelshap", "occlusion"], "metrics": ["pgi"]}).json()
    assert ev["rows"] == 4 and len(ev["table"]) == 2
    f = c.post("/api/fairness", json={"attribute": "mean radius", "n_explain": 10}).json()
    assert len(f["groups"]) == 2 and 0 <= f["demographic_parity_difference"] <= 1 and "percentage points" in f["summary"]
    job = c.post("/api/jobs/explain", json={"rows": "0:40"}).json()
    for _ in range(200):
        s = c.get(f"/api/jobs/{job['id']}").json()
        if s["status"] != "running":
            break
        assert c.get("/api/info").status_code == 200          # responsive while the job runs
        time.sleep(0.1)
    assert s["status"] == "done" and s["done"] == 40
    assert c.get("/docs").status_code == 200 and "/api/explain" in c.get("/openapi.json").text
    cf = c.post("/api/counterfactuals", json={"row": 1, "k": 2}).json()
    assert cf["metrics"]["validity"] == 1.0 and cf["counterfactuals"][0]["text"].startswith("Change ")


def test_api_bad_input(server, files):
    c = server.client()
    r = c.post("/api/explain", json={"row": 10_000})
    assert r.status_code == 404 and "out of range" in r.json()["error"]
    r = c.post("/api/explain", json={"row": 1, "features": {"nope": 1}})
    assert r.status_code == 400 and "unknown feature 'nope'" in r.json()["error"]
    r = c.post("/api/explain", json={"row": 1, "features": {"mean radius": "abc"}})
    assert r.status_code == 400 and "needs a number" in r.json()["error"]
    r = c.post("/api/explain", content=b"{broken", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["error"]
    r = c.post("/api/fairness", json={"attribute": "zzz"})
    assert r.status_code == 400 and "unknown attribute" in r.json()["error"]
    up = lambda m, d: c.post("/api/upload", files={"model": m, "data": d})  # noqa: E731
    r = up(("model.txt", b"not a model"), ("d.csv", (files / "data.csv").read_bytes()))
    assert r.status_code == 400 and "must be .skops" in r.json()["error"]
    r = up(("m.skops", b"PK not a zip"), ("d.csv", (files / "data.csv").read_bytes()))
    assert r.status_code == 400 and "not a readable skops file" in r.json()["error"]
    r = up(("m.skops", (files / "m.skops").read_bytes()), ("d.xlsx", b"x"))
    assert r.status_code == 400 and "must be .csv or .parquet" in r.json()["error"]
    r = up(("m.skops", (files / "m.skops").read_bytes()), ("missing.csv", (files / "missing.csv").read_bytes()))
    assert r.status_code == 400 and "missing column(s) ['income']" in r.json()["error"]
    r = up(("m.pkl", b"\x80\x04junk"), ("d.csv", (files / "data.csv").read_bytes()))
    assert r.status_code == 400 and "pickle" in r.json()["error"]
    r = up(("m.skops", b"0" * (51 * 2**20)), ("d.csv", b"a\n1\n"))
    assert r.status_code == 413 and "limit" in r.json()["error"]
    assert c.get("/api/info").json()["rows"] == 143            # still serving the same data


def test_serve_train_data_needs_the_label(files, capsys):
    from whybox.cli import main
    with pytest.raises(SystemExit) as exit_:          # refused before anything is served
        main(["serve", "--model", str(files / "m.skops"), "--data", str(files / "data.csv"),
              "--train-data", str(files / "data.csv")])
    assert exit_.value.code == 2 and "--train-data needs --label" in capsys.readouterr().err


def test_token_required_off_loopback(files):
    p = subprocess.run([sys.executable, "-m", "whybox.cli", "serve", "--host", "0.0.0.0"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2 and "--token" in p.stderr

    class TokenServer(Server):
        def headers(self):
            return {"Authorization": "Bearer s3cret"}

    s = TokenServer("--token", "s3cret")
    try:
        assert s.token == "s3cret"                               # the printed URL carries the given token
        assert httpx.get(s.url + "/api/info").status_code == 401
        assert httpx.get(s.url + "/api/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(s.url + "/api/info", headers=s.headers()).status_code == 200
        with httpx.Client(base_url=s.url) as c:                  # ?token= once, then the cookie
            r = c.get("/?token=s3cret")
            assert r.status_code == 303 and r.headers["location"] == "/"     # the token leaves the address bar
            cookie = r.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert c.get("/").status_code == 200 and c.get("/api/info").status_code == 200
    finally:
        s.stop()


# -------------------------------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it with apt when it can)")
    pw = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def _shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if os.environ.get("WHYBOX_DOC_SCREENSHOTS"):
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ROOT / "docs" / "img" / f"{name}.png"), full_page=False)


def _page(browser, height):
    """A browser context that accepts downloads, its page, and the list the page's JavaScript errors go to."""
    ctx = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": height})
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return ctx, page, errors


def test_browser_demo_flow(server, browser, tmp_path):
    ctx, page, errors = _page(browser, 900)
    page.goto(server.page_url("/"))
    page.wait_for_selector("#importance .main-svg", timeout=90_000)
    assert "Explained" in page.text_content("#job-status")
    assert "%" in page.text_content("#accuracy")
    _shot(page, "overview")
    # pick a row from the list: the one whose score is closest to 0.5 (a what-if can move it)
    page.goto(server.url + "/row/0")
    row = page.evaluate("""() => { let best = null, gap = 2;
        document.querySelectorAll('#rows tr[data-row]').forEach(tr => {
          const s = parseFloat(tr.children[1].textContent);
          if (Math.abs(s - 0.5) < gap) { gap = Math.abs(s - 0.5); best = tr.dataset.row; } });
        return best; }""")
    page.fill("#search", f"row {row}")
    page.click(f"#rows a[href='/row/{row}']")
    page.wait_for_selector("#chart .main-svg")
    assert page.text_content("#row-title") == f"Row {row}"
    assert page.text_content("#narrative").startswith("The model's score")
    assert "every claim checked" in page.text_content("#verified")
    before = page.text_content("#prediction")
    _shot(page, "row")
    # a row near the boundary: the explanation is poor, so the page offers the most faithful method
    assert page.is_visible("#better-btn") and page.get_attribute("#trust", "class") == "bad"
    page.click("#better-btn")
    page.wait_for_selector("#better-use", state="visible", timeout=60_000)
    best = page.text_content("#better-msg")
    assert best.startswith("Most faithful here: ")
    page.click("#better-use")
    page.wait_for_function("document.getElementById('method').value === "
                           f"'{best.split(': ', 1)[1].split(' ')[0]}'", timeout=30_000)
    # what-if: push the three most important features far
    payload = page.evaluate("JSON.parse(document.getElementById('payload').textContent)")
    for f in payload["features"][:3]:
        page.fill(f"#whatif input[data-feature='{f['name']}']", str(float(f["value"]) * (0.2 if f["attribution"] > 0 else 3)))
    page.click("#update")
    page.wait_for_function(f"document.getElementById('prediction').textContent !== '{before}'", timeout=60_000)
    assert page.text_content("#prediction") != before
    # a rule and similar people
    page.click("#rule-btn")
    page.wait_for_function("document.getElementById('rule').textContent.length > 30 && "
                           "!document.getElementById('rule').textContent.startsWith('looking')", timeout=60_000)
    assert page.text_content("#rule").startswith(("As long as", "No simple rule"))
    assert page.locator("#examples tr").count() >= 2
    # counterfactuals: what would need to change
    page.click("#reset")
    page.click("#cf-btn")
    page.wait_for_selector("#counterfactuals p", timeout=90_000)
    assert page.text_content("#counterfactuals p").startswith("Change ")
    page.fill("#whatif input >> nth=0", "abc")
    page.click("#update")
    page.wait_for_selector("#whatif-msg.error")
    assert "needs a number" in page.text_content("#whatif-msg")
    # fairness
    page.goto(server.url + "/fairness")
    page.select_option("#attribute", "mean radius")
    page.click("#show")
    page.wait_for_selector("#fair-chart .main-svg", timeout=60_000)
    assert "percentage points" in page.text_content("#fair-summary")
    _shot(page, "fairness-median-split")
    # export a report
    with page.expect_download() as dl:
        page.click("#export")
    path = tmp_path / "report.html"
    dl.value.save_as(path)
    html = path.read_text()
    assert "<script" not in html and "data:image/png;base64" in html and "percentage points" in html
    # bad input through the pages
    page.goto(server.url + "/row/100000")
    assert "out of range" in page.text_content("#error")
    assert not errors, errors
    ctx.close()


def test_browser_escapes_user_text(browser, files):
    s = Server("--model", files / "m.skops", "--data", files / "data.csv", "--label", "label")
    try:
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(s.page_url("/row/3"))
        page.wait_for_selector("#chart .main-svg")
        assert "<script>alert(1)</script>" in page.content().replace("&lt;", "<").replace("&gt;", ">")
        assert page.locator("input[data-feature='<script>alert(1)</script>']").count() == 1
        page.goto(s.url + "/fairness?attribute=%3Cscript%3Ealert(1)%3C/script%3E")
        page.wait_for_selector("#fair-summary")
        page.click("#flip-btn")                                     # the new panels write text, never HTML
        page.wait_for_selector("#flip-table tr >> nth=1", timeout=60_000)
        page.click("#remedy-btn")
        page.wait_for_selector("#remedy-table tr >> nth=2", timeout=60_000)
        assert "<script>alert(1)</script>" in page.text_content("#remedy-text")   # shown as text
        assert "X_train" in page.text_content("#remedy-text")                      # refits need training rows
        assert dialogs == []                                        # no script ran
        page.close()
    finally:
        s.stop()


def test_whole_model_page(server, browser):
    c = server.client()
    r = c.post("/api/surrogate", json={"kind": "tree", "max_depth": 2}).json()
    f = r["fidelity"]["perturbed"]
    assert r["kind"] == "tree" and f["metric"] == "agreement" and f["low"] <= f["value"] <= f["high"]
    assert len(r["rules"]) <= 4 and r["n_queries"] <= 3000 and r["trust"]
    assert c.post("/api/surrogate", json={"kind": "forest"}).status_code == 422
    rule = c.post("/api/rule", json={"row": 5}).json()
    assert rule["rule"].startswith(("As long as", "No simple rule")) and rule["anchor"]["n_queries"] <= 6000
    assert c.post("/api/rule", json={"row": "5"}).status_code == 422
    assert c.post("/api/rule", json={"row": 10**6}).status_code == 404
    assert c.get("/api/surrogate").status_code == 405                    # state changes only on POST
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.page_url("/whole"))
    page.select_option("#w-kind", "rules")
    page.click("#w-go")
    page.wait_for_selector("#w-rules li", timeout=60_000)
    assert page.text_content("#w-trust").startswith("This summary is ")
    assert "new cases (95% CI" in page.text_content("#w-fidelity")
    assert page.locator("#w-rules li").count() >= 2
    assert page.locator("#w-rules li").last.text_content().startswith("Otherwise")
    _shot(page, "whole-model")
    assert not errors, errors
    page.close()


# ------------------------------------------------------------------------- fairness (census demo)
def test_fairness_api_on_the_census_demo(census_server):
    c = census_server.client(timeout=120)
    info = c.get("/api/info").json()
    assert info["protected"] == ["sex", "race"] and info["task"] == "classification" and info["can_refit"]
    assert "SYNTHETIC" in info["description"]
    f = c.post("/api/fairness", json={"attribute": "sex", "n_explain": 20}).json()
    prox = {p["feature"]: p for p in f["proxies"]}
    assert prox["relationship"]["proxy"] and not prox["race"]["proxy"] and "relationship" in f["proxy_words"]
    flip = c.post("/api/fairness/flip", json={"attribute": "sex", "proxies": "auto"}).json()
    assert flip["proxies"] == ["relationship"] and flip["n_changed"] > 0
    assert flip["sentences"][0].startswith("For ") and "would change" in flip["sentences"][0]
    rem = c.post("/api/fairness/remedies", json={"attribute": "sex"}).json()
    by = {r["name"]: r for r in rem["remedies"]}
    assert set(by) == {"original", "thresholds", "without", "without_proxies", "reweighing", "reduction"} | \
        ({"search"} if "search" not in rem["skipped"] else set())
    assert by["thresholds"]["uses_attribute"] and not by["without_proxies"]["uses_attribute"]
    assert by["without_proxies"]["demographic_parity_difference"] < 0.4 * by["original"]["demographic_parity_difference"]
    assert c.post("/api/fairness/remedies", json={"attribute": "sex", "constraint": "nope"}).status_code == 422
    assert c.post("/api/fairness/flip", json={"attribute": "sex", "proxies": "all"}).status_code == 422
    r = c.post("/api/fairness/flip", json={"attribute": "sex", "proxies": ["nope"]})
    assert r.status_code == 400 and "unknown attribute 'nope'" in r.json()["error"]
    best = c.post("/api/choose", json={"row": 2}).json()
    assert best["best"] in {"kernelshap", "lime", "occlusion", "shapley"} and best["ranking"][0]["r2"] == best["r2"]


def test_browser_fairness_flow(census_server, browser, tmp_path):
    ctx, page, errors = _page(browser, 1000)
    page.goto(census_server.page_url("/fairness"))
    assert page.locator("#attribute option").first.text_content() == "sex (protected)"
    page.select_option("#attribute", "sex")
    page.click("#show")                                                       # find the gap
    page.wait_for_selector("#fair-chart .main-svg", timeout=90_000)
    assert "percentage points" in page.text_content("#fair-summary")
    assert "relationship" in page.text_content("#proxy-words")
    _shot(page, "fairness")
    page.check("#flip-proxies")                                               # the counterfactual test
    page.click("#flip-btn")
    page.wait_for_selector("#flip-table tr >> nth=2", timeout=60_000)
    assert "would change" in page.text_content("#flip-text")
    page.locator("#flip-card").scroll_into_view_if_needed()
    _shot(page, "fairness-flip")
    page.click("#remedy-btn")                                                 # try remedies
    page.wait_for_selector("#remedy-table tr >> nth=3", timeout=120_000)
    page.wait_for_selector("#remedy-chart .main-svg")
    cells = page.locator("#remedy-table tr").all_inner_texts()
    assert cells[1].startswith("The model as it is") and any("without" in c for c in cells[2:])   # before / after
    assert "points lower" in page.text_content("#remedy-text")
    page.locator("#remedy-card").scroll_into_view_if_needed()
    _shot(page, "fairness-remedies")
    assert "constraint=demographic_parity" in page.get_attribute("#export", "href")
    with page.expect_download(timeout=120_000) as dl:                        # export the report
        page.click("#export")
    path = tmp_path / "fairness.html"
    dl.value.save_as(path)
    html = path.read_text()
    assert "<script" not in html and "Remedies and their price" in html and "points lower" in html
    assert "would change" in html and html.count("data:image/png;base64") == 2
    page.goto(census_server.url + "/row/0")                                  # plain words on the row page
    page.wait_for_selector("#chart .main-svg")
    assert page.text_content("#trust") and "local R²" in page.get_attribute("#trust", "title")
    narrative = page.text_content("#narrative")
    assert narrative.count("raises the score") + narrative.count("lowers the score") <= 1
    assert not errors, errors
    ctx.close()


def test_regressor_is_shown_as_a_regressor():
    from sklearn.linear_model import LinearRegression

    from whybox.app import pages
    from whybox.app.fairness import fairness_report, remedies_payload
    from whybox.app.state import AppState
    from whybox.errors import InputError

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=120), "group": rng.integers(0, 2, 120).astype(float)})
    y = X["x"] + X["group"]
    st = AppState(LinearRegression().fit(X, y), X, y.to_numpy())
    info = st.info()
    assert info["task"] == "regression" and info["focus"] == "predicted value" and info["accuracy"] is None
    rep = fairness_report(st, "group", n_explain=10)
    assert "selection_rate" not in rep["groups"][0] and rep["mean_prediction_difference"] > 0.5
    assert "predicted value averages" in rep["summary"] and "“0”" not in rep["summary"]
    html = pages.fairness_page(info, ["group", "x"], "group", rep)
    assert "remedy-card" not in html and "average prediction" in html and "share given" not in html
    payload = st.explain_row(3)
    assert float(payload["predicted_class"]) == pytest.approx(float(st.outputs[3, 0]), rel=1e-3)
    row = pages.row_page(info, 3, payload, [{"row": 3, "score": 1.0, "predicted": st.predicted(3), "search": "row 3"}])
    assert "Predicted value" in row and "Predicted class" not in row and "cf-card" not in row and "rule-card" not in row
    with pytest.raises(InputError, match="classifier"):
        st.rule_and_examples(3)
    with pytest.raises(InputError, match="classifier"):
        remedies_payload(st, "group")


def test_force_html_opens_in_chromium_with_the_network_blocked(browser, tmp_path):
    import whybox
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(5, 4)), columns=["age", "income", "<i>debt</i>", "tenure"])
    e = whybox.explain(lambda Z: Z @ np.array([1.0, -2.0, 0.5, 0.0]), X, method="shapley", background=X.iloc[:2])
    path = tmp_path / "force.html"
    e.force_html(path=path)
    ctx = browser.new_context(offline=True)
    asked = []
    ctx.on("request", lambda r: asked.append(r.url))
    ctx.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(path.as_uri())
    assert page.locator("svg.force").count() == 5
    assert page.locator("svg.force").first.bounding_box()["width"] > 800
    first = page.locator("svg.force").first
    assert first.locator("polygon.seg").count() == int((e.values[0] != 0).sum())
    assert float(first.get_attribute("data-output")) == pytest.approx(e.predictions[0])
    assert "<i>debt</i>" in page.text_content("body") and page.locator("i").count() == 0   # text, not markup
    assert all(u.startswith("file:") for u in asked) and not errors
    ctx.close()
