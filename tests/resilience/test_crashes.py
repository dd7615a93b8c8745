"""Every worker SIGKILLed in the middle of the image fan-out (OSS storage, a real WordPress), then
started again: the sweeper re-queues the run, which finishes with exactly one post on the site, every
image stored once in OSS (one successful PUT per media key, counted on the OSS server) and imported
once into the site's media library, and no upload that had finished done again.

(The other crash, SIGKILL while WordPress holds its answer to the create, is
tests/wordpress/test_publish.py::test_worker_killed_after_wordpress_answered_no_duplicate; both run
20 times in bench/crashes.py.)
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.fixtures.oss import oss_settings
from tests.resilience.test_faults import media_of, sha
from tests.support import starts, wait_requeued, wait_run, wait_until
from tests.wordpress.conftest import manuscript, picture, posts_of

pytestmark = [
    pytest.mark.oss, pytest.mark.wordpress, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis,
    pytest.mark.slow,
]  # fmt: skip
IMAGES = 8


@pytest.fixture
@starts("worker")
def crash_stack(stack_env, api, oss_server, wordpress, tmp_path):
    from tests.fixtures.stack import isolated_stack

    overrides = {
        **oss_settings(oss_server),
        "WP_URL": wordpress.url,
        "WP_USER": wordpress.user,
        "WP_APP_PASSWORD": wordpress.app_password,
        "WP_DEFAULT_STATUS": "publish",
    }
    wordpress.reset()
    with isolated_stack(stack_env, tmp_path, overrides, cpu=1, io=4) as stack:
        stack["log_dir"] = tmp_path
        yield stack
    from kombu import pools

    pools.reset()


def media_puts(oss_server) -> Counter:
    """Successful PUTs per media key."""
    return Counter(r.key for r in list(oss_server.requests)
                   if r.method == "PUT" and r.key.startswith("media/") and r.status == 200)  # fmt: skip


@pytest.mark.parametrize("repetition", [1, 2])
def test_workers_killed_mid_fan_out_run_finishes_once(client, crash_stack, oss_server, wordpress, repetition):
    from tests.fixtures.stack import start_workers

    oss_server.latency = 0.25  # each upload item (HEAD, GET, PUT) takes ~0.75 s: 8 items on 4 threads ~1.5 s
    images = [picture(int(sha(f"crash/{repetition}/{time.time_ns()}/{i}".encode())[:8], 16)) for i in range(IMAGES)]
    data = manuscript(f"Crash {repetition}", images=images, seed=repetition)
    response = client.post("/documents", files={"file": (f"crash-{repetition}.docx", data)})
    assert response.status_code == 201, response.text
    run_id, doc_id = response.json()["run"]["id"], response.json()["document"]["id"]

    wait_until(lambda: 1 <= len(media_puts(oss_server)), timeout=60, interval=0.02,
               message="the first image to be stored")  # fmt: skip
    oss_server.hold()  # no further request gets through: the fan-out stays unfinished until the kill
    for w in crash_stack["workers"]:
        w.kill()
    oss_server.release()  # what the dead workers had sent is dropped, undone
    killed_at = time.monotonic()
    stored_before = len(media_puts(oss_server))
    run = client.get(f"/runs/{run_id}").json()
    upload = next(s for s in run["steps"] if s["name"] == "upload_image")
    assert run["state"] == "running" and upload["state"] == "running", (run["state"], upload["state"])
    assert stored_before < IMAGES, "the fan-out was over before the kill: nothing was tested"
    items_done_before = {i["index"] for i in upload["items"] if i["state"] == "succeeded"}

    crash_stack["workers"][:] = start_workers(crash_stack["env"], crash_stack["log_dir"], cpu=1, io=4)
    wait_requeued(run_id)

    run = wait_run(client, run_id)
    recovery = time.monotonic() - killed_at
    print(f"\nrepetition {repetition}: {stored_before}/{IMAGES} images stored at the kill, "
          f"recovered in {recovery:.1f}s")  # fmt: skip
    assert run["state"] == "succeeded", run["error"]
    assert run["launches"] == 2

    # Exactly one post, with every image; each image once in OSS and once in the media library.
    (post,) = posts_of(wordpress, doc_id)
    publish = next(s for s in run["steps"] if s["name"] == "publish")
    assert publish["result"]["post_id"] == post["id"]
    assert post["content"]["raw"].count("<!-- wp:image") == IMAGES - 1  # the featured one is above the post
    puts = media_puts(oss_server)
    assert set(puts) == {f"media/{sha(i)}.png" for i in images}
    assert set(puts.values()) == {1}, {k: v for k, v in puts.items() if v > 1}
    assert media_of(wordpress, images) == Counter({sha(i): 1 for i in images})

    # The items that had finished before the kill were not done again (their one attempt stands).
    upload = next(s for s in run["steps"] if s["name"] == "upload_image")
    assert all(i["state"] == "succeeded" for i in upload["items"]) and len(upload["items"]) == IMAGES
    for item in upload["items"]:
        if item["index"] in items_done_before:
            assert item["attempts"] == 1 and item["result"]["uploaded"] is True
