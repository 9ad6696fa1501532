"""A scripted OpenAI-compatible chat server on 127.0.0.1, for tests and offline demos.

    with ScriptedLLMServer(["A, B, C", {"status": 429}, "second reply"]) as srv:
        client = LLMClient(srv.base_url, "scripted")

Each request to ``/v1/chat/completions`` takes the next entry of the script (the last one repeats),
or the value of ``script(request_json)`` when the script is a callable. An entry is

* a string: a 200 reply with that content;
* a dict with any of ``content`` (str), ``status`` (HTTP code; non-200 sends an error body),
  ``delay`` (seconds to wait before answering), ``raw`` (a raw body, e.g. malformed JSON),
  ``logprobs`` (a list, one ``{token: logprob}`` dict of top tokens per generated token),
  ``choices`` (list of contents, for n > 1), ``headers``, ``trickle`` (seconds between the reply's
  bytes, sent one at a time: a slow-loris server), ``pad`` (bytes of whitespace before the reply
  JSON, for an oversized reply).

Requests to ``/v1/completions`` (text completions) are answered from the same script: the reply's
text is ``content`` (after the prompt when the request has ``echo``), and an entry may add
``completion_logprobs`` (the legacy ``logprobs`` object: tokens, token_logprobs, text_offset) and
``prompt_logprobs`` (vLLM's field), both sent exactly as given, malformed or not.

``requests`` holds every JSON body received; ``auth`` every Authorization header.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Sequence


class ScriptedLLMServer:
    def __init__(self, script: Sequence[Any] | Callable[[dict], Any], *, model: str = "scripted"):
        self.script = script if callable(script) else list(script)
        self.model = model
        self.requests: list[dict] = []
        self.auth: list[str | None] = []
        self._i = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def _next(self, body: dict) -> Any:
        with self._lock:
            self.requests.append(body)
            if callable(self.script):
                return self.script(body)
            entry = self.script[min(self._i, len(self.script) - 1)]
            self._i += 1
            return entry

    def __enter__(self) -> "ScriptedLLMServer":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:  # quiet
                pass

            def _send(self, code: int, body: bytes, headers: dict | None = None, trickle: float = 0.0,
                      pad: int = 0) -> None:
                body = b" " * int(pad) + body
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, str(v))
                self.end_headers()
                try:
                    if trickle:
                        for i in range(len(body)):
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(trickle)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(n) or b"{}")
                except ValueError:
                    body = {}
                outer.auth.append(self.headers.get("Authorization"))
                path = self.path.rstrip("/")
                if not path.endswith("/completions"):
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                entry = outer._next(body)
                if isinstance(entry, str):
                    entry = {"content": entry}
                if entry.get("delay"):
                    time.sleep(float(entry["delay"]))
                status = int(entry.get("status", 200))
                if "raw" in entry:
                    self._send(status, str(entry["raw"]).encode(), entry.get("headers"))
                    return
                if status != 200:
                    err = {"error": {"message": entry.get("content", f"scripted error {status}"), "type": "scripted"}}
                    self._send(status, json.dumps(err).encode(), entry.get("headers"))
                    return
                reply = outer._completion(body, entry) if path.endswith("/chat/completions") else outer._text(body, entry)
                self._send(200, json.dumps(reply).encode(), entry.get("headers"),
                           float(entry.get("trickle", 0.0)), int(entry.get("pad", 0)))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _completion(self, body: dict, entry: dict) -> dict:
        contents = entry.get("choices") or [entry.get("content", "")] * int(body.get("n", 1) or 1)
        choices = []
        for i, c in enumerate(contents):
            ch: dict[str, Any] = {"index": i, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": c}}
            if entry.get("logprobs") is not None and body.get("logprobs"):
                toks = []
                for tops in entry["logprobs"]:
                    best = max(tops, key=tops.get)
                    toks.append({"token": best, "logprob": tops[best], "bytes": None,
                                 "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in tops.items()]})
                ch["logprobs"] = {"content": toks}
            choices.append(ch)
        words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        return {"id": f"scripted-{len(self.requests)}", "object": "chat.completion", "created": 0,
                "model": body.get("model", self.model), "choices": choices,
                "usage": {"prompt_tokens": words, "completion_tokens": len(str(contents[0]).split()),
                          "total_tokens": words + len(str(contents[0]).split())}}

    def _text(self, body: dict, entry: dict) -> dict:
        prompt = str(body.get("prompt", ""))
        ch: dict[str, Any] = {"index": 0, "finish_reason": "length", "logprobs": entry.get("completion_logprobs"),
                              "text": (prompt if body.get("echo") else "") + str(entry.get("content", ""))}
        if "prompt_logprobs" in entry:
            ch["prompt_logprobs"] = entry["prompt_logprobs"]
        n = len(prompt.split())
        return {"id": f"scripted-{len(self.requests)}", "object": "text_completion", "created": 0,
                "model": body.get("model", self.model), "choices": [ch],
                "usage": {"prompt_tokens": n, "completion_tokens": 0, "total_tokens": n}}

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
