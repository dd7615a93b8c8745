"""Hostile manuscripts through the whole workflow (API -> real workers): the door refuses what is not
Word (422, nothing kept); what looks like Word but is hostile ends as a failed run with a clear error,
its original kept; no worker dies or hangs, and the next manuscript still goes through."""

from __future__ import annotations

import re

import pytest

from tests.documents.builders import docx, inline_image, ole2, p, png_header_only, word_fib
from tests.documents.test_hostile import LAUGHS, XXE, _entries, zip_of
from tests.samples import docx as sample_docx
from tests.support import require_corpus, require_program, wait_run

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


def submit(client, name: str, data: bytes):
    return client.post("/documents", files={"file": (name, data)})


def zip_bomb() -> bytes:
    return zip_of({**_entries(docx(p("x"))), "word/filler.xml": b" " * (16 * 1024 * 1024)})


HOSTILE = {
    "zip bomb": ("bomb.docx", zip_bomb, "parse", "zip bomb"),
    "external entities": ("xxe.docx", lambda: docx("", raw_document=XXE), "parse", "DTD"),
    "billion laughs": ("laughs.docx", lambda: docx("", raw_document=LAUGHS), "parse", "DTD|entit"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_word_files_end_as_failed_runs_with_their_original_kept(client, workers, case):
    name, make, step, words = HOSTILE[case]
    data = make()
    response = submit(client, name, data)
    assert response.status_code == 201, response.text
    run = wait_run(client, response.json()["run"]["id"])  # ended: no worker hangs on it
    assert run["state"] == "failed"
    assert run["error_step"] == step
    assert re.search(words, run["error"]), run["error"]
    assert "Traceback" not in run["error"] and "\n" not in run["error"]
    failed = {s["name"]: s for s in run["steps"]}[step]
    assert failed["error_code"] in ("invalid_document", "limit_exceeded")
    assert failed["attempts"] == 1  # a bad file is not retried
    original = client.get(f"/documents/{response.json()['document']['id']}/original")
    assert original.status_code == 200 and original.content == data
    assert all(w.process.poll() is None for w in workers)


@pytest.mark.parametrize(
    "name, data, code",
    [
        ("photo.docx", png_header_only(200, 200), "invalid_document"),
        ("note.doc", b"Dear editor, this is plain text with a .doc name.", "invalid_document"),
        ("locked.docx", ole2({"EncryptionInfo": b"\x04\x00\x04\x00", "EncryptedPackage": b"\x00" * 64}), "encrypted_document"),
        ("locked.doc", ole2({"WordDocument": word_fib(encrypted=True)}), "encrypted_document"),
    ],
)
def test_disguised_and_encrypted_files_are_refused_at_the_door(client, name, data, code):
    response = submit(client, name, data)
    assert response.status_code == 422
    assert response.json()["code"] == code


def test_a_huge_image_is_left_out_with_a_warning_and_the_run_goes_on(client, workers):
    data = docx(p("Text before.") + p(runs=inline_image("rIdhuge.png")) + p("Text after."),
                media={"huge.png": png_header_only(10_000, 10_000)})
    run = wait_run(client, submit(client, "huge-image.docx", data).json()["run"]["id"])
    assert run["state"] == "succeeded", run["error"]
    assert any("10000×10000" in w for w in run["warnings"])


@pytest.mark.libreoffice
def test_a_broken_legacy_doc_fails_in_convert(client, workers):
    require_program("soffice", "LibreOffice", "libreoffice-writer-nogui")
    garbage = ole2({"WordDocument": word_fib(encrypted=False)[:64] + b"\xff" * 4000})
    run = wait_run(client, submit(client, "broken.doc", garbage).json()["run"]["id"], timeout=240)
    assert run["state"] == "failed"
    assert run["error_step"] in ("to_docx", "parse")
    assert "\n" not in run["error"]


def test_the_next_manuscript_still_goes_through(client, workers):
    run = wait_run(client, submit(client, "after.docx", sample_docx("After the storm", images=1, seed=4242)).json()["run"]["id"])
    assert run["state"] == "succeeded", run["error"]


@pytest.mark.slow
@pytest.mark.libreoffice
@pytest.mark.timeout(1200)  # a hang guard for ~140 files through two workers on a loaded machine
def test_every_poi_file_through_the_workflow(client, workers):
    """Apache POI's test files (fuzzed, truncated, encrypted among them): each is refused at the door
    with a reason, or its run ends — succeeded, or failed with a typed error — within its timeout."""
    corpus = require_corpus("poi")
    require_program("soffice", "LibreOffice", "libreoffice-writer-nogui")
    outcomes = {"refused": 0, "succeeded": 0, "failed": 0}
    runs = {}
    for path in sorted(corpus.iterdir()):
        if path.suffix.lower() not in (".doc", ".docx"):
            continue
        response = submit(client, path.name, path.read_bytes())
        if response.status_code in (413, 422):
            assert response.json()["detail"], path.name
            outcomes["refused"] += 1
        else:
            assert response.status_code in (200, 201), (path.name, response.text)
            if not response.json()["duplicate"]:
                runs[path.name] = response.json()["run"]["id"]
    for name, run_id in runs.items():
        run = wait_run(client, run_id, timeout=300)
        outcomes[run["state"]] += 1
        if run["state"] == "failed":
            step = {s["name"]: s for s in run["steps"]}[run["error_step"]]
            assert step["error_code"] not in ("unexpected", "worker"), (name, run["error"])
            assert "\n" not in run["error"], name
    assert all(w.process.poll() is None for w in workers)
    print(outcomes)
    assert outcomes["succeeded"] > 0
