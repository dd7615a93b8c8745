"""API latency under load: wrk, 50 concurrent connections on loopback, for 20 s:
POST /documents (25), GET /runs/{id} (20) and GET /health (5) at the same time. Goal: the p99 of
each business route ≤ 3× the p99 of /health measured in the same run.

    .venv/bin/python -m bench.load [--seconds 20] [--api-workers 2] [--with-workers]

Needs wrk (Debian package wrk). Without --with-workers the runs queue up unprocessed, so what is
measured is the API alone; with it, the Celery workers process the runs on the same 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, save, stack, table

LUA_UPLOAD = r"""
local bodies = {}
local boundary = "copydeskbench"
function init(args)
  local dir = args[1]
  local i = 0
  while true do
    local f = io.open(dir .. "/body-" .. i .. ".bin", "rb")
    if not f then break end
    bodies[#bodies + 1] = f:read("*all")
    f:close()
    i = i + 1
  end
  counter = math.random(#bodies)
end
function request()
  counter = counter % #bodies + 1
  return wrk.format("POST", "/documents", {
    ["Content-Type"] = "multipart/form-data; boundary=" .. boundary,
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
  }, bodies[counter])
end
"""

LUA_GET = r"""
local paths = {}
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  counter = math.random(#paths)
end
function request()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter], {["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")})
end
"""


def multipart(name: str, data: bytes) -> bytes:
    b = b"--copydeskbench\r\n"
    b += f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'.encode()
    b += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--copydeskbench--\r\n"
    return b


def unique_copy(data: bytes, n: int) -> bytes:
    """The same manuscript with a different zip comment: new bytes, so not a duplicate upload."""
    import io
    import zipfile

    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a") as zf:
        zf.comment = f"copy {n}".encode()
    return out.getvalue()


def parse_wrk(output: str) -> dict:
    def ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    dist = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.M))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"p50_ms": ms(dist["50"]), "p90_ms": ms(dist["90"]), "p99_ms": ms(dist["99"]),
            "requests": requests, "rate": rate, "non_2xx": int(errors.group(1)) if errors else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--with-workers", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian package wrk)")
    from tests.samples import docx

    work = Path(tempfile.mkdtemp(prefix="copydesk-load-"))
    with stack(cpu=2, io=8) as st:
        if not args.with_workers:
            for w in st["workers"]:
                w.stop()
        port = 18000 + os.getpid() % 1000
        env = {**st["env"], "PUBLIC_URL": f"http://127.0.0.1:{port}"}
        api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.api.main:app", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(args.api_workers), "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env={**env, "LOG_LEVEL": "WARNING"}, stdout=open(work / "api.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            import httpx

            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    if httpx.get(f"{base}/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            from app.core.db import session_scope
            from app.core.security import hash_password
            from app.models import User

            with session_scope() as session:
                session.add(User(email="bench@example.com", role="editor", hashed_password=hash_password("bench-password")))
            token = httpx.post(f"{base}/auth/token", data={"username": "bench@example.com",
                                                           "password": "bench-password"}).json()["access_token"]
            # Distinct manuscripts (each upload is a new document, not a duplicate), and runs to read.
            bodies = work / "bodies"
            bodies.mkdir()
            base_doc = docx("Load test manuscript", paragraphs=6, images=1, seed=10_000)
            for i in range(3000):
                (bodies / f"body-{i}.bin").write_bytes(multipart(f"load-{i}.docx", unique_copy(base_doc, i)))
            run_paths = []
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
                for i in range(50):
                    sub = client.post("/documents", files={"file": (f"r{i}.docx", docx(f"Read {i}", seed=90_000 + i))})
                    run_paths.append(f"/runs/{sub.json()['run']['id']}")
            (work / "runs.txt").write_text("\n".join(run_paths) + "\n")
            (work / "upload.lua").write_text(LUA_UPLOAD)
            (work / "get.lua").write_text(LUA_GET)
            wrk_env = {**os.environ, "BENCH_TOKEN": token}
            duration = f"{args.seconds}s"
            procs = {
                "POST /documents": subprocess.Popen(
                    ["wrk", "-t2", "-c25", "-d", duration, "--latency", "-s", str(work / "upload.lua"), base, "--", str(bodies)],
                    env=wrk_env, stdout=subprocess.PIPE, text=True),
                "GET /runs/{id}": subprocess.Popen(
                    ["wrk", "-t2", "-c20", "-d", duration, "--latency", "-s", str(work / "get.lua"), base, "--", str(work / "runs.txt")],
                    env=wrk_env, stdout=subprocess.PIPE, text=True),
                "GET /health": subprocess.Popen(
                    ["wrk", "-t1", "-c5", "-d", duration, "--latency", f"{base}/health"], stdout=subprocess.PIPE, text=True),
            }
            results = {name: parse_wrk(p.communicate()[0]) for name, p in procs.items()}
        finally:
            api.terminate()
            api.wait(20)
    health_p99 = results["GET /health"]["p99_ms"]
    rows = []
    for name, r in results.items():
        ratio = r["p99_ms"] / health_p99
        rows.append([name, f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{ratio:.2f}", f"{r['rate']:.0f}", r["non_2xx"]])
    path = save("load", {"seconds": args.seconds, "api_workers": args.api_workers, "with_workers": args.with_workers,
                         "connections": {"POST /documents": 25, "GET /runs/{id}": 20, "GET /health": 5},
                         "results": results, "health_p99_ms": health_p99})
    print(table(["route", "p50 ms", "p99 ms", "p99 ÷ /health p99", "req/s", "non-2xx"], rows))
    print(f"\ngoal: p99 ≤ 3 × /health p99 ({3 * health_p99:.1f} ms)\nresults: {path}")


if __name__ == "__main__":
    main()
