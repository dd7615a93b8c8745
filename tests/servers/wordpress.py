"""A real WordPress for the tests, with no Docker: Debian's wordpress files + `php -S` + MariaDB.

Measured recipe and traps: shared/notes/wordpress-test-server.md.

Once per machine (root; after `apt-get update`)::

    python -m tests.servers.wordpress deps

installs php-cli and the PHP extensions WordPress needs, and unpacks Debian's `wordpress` package
(plus the libraries Debian symlinks out of it) into a cache folder, without installing the package
itself (which would pull Apache). Per test session::

    with WordPressServer() as wp:
        wp.url, wp.user, wp.app_password
        wp.fail_next(2, status=500)          # the next two REST requests answer 500
        wp.count_posts(search="marker")      # counts the site's posts, trash included

`WordPressServer` copies the tree to /dev/shm, writes its own wp-config.php (environment type
`local`, so application passwords work over plain HTTP; outgoing HTTP and WP-Cron off; the debug
log in a file), creates a database on the MariaDB at 127.0.0.1:3306 (root, empty password) or, when
none answers there, starts a private mariadbd on a unix socket, installs WordPress from PHP with
`wp_install()`, sets pretty permalinks, creates an application password, and serves the copy with
`php -S` and PHP_CLI_SERVER_WORKERS in a process group of its own. `stop()` ends that group (the
workers outlive their parent otherwise), drops the database and removes the copy.

A test-only mu-plugin (wordpress_files/mu-plugins) reads a control file to inject faults (the next N
REST requests answer 500, or 429 with Retry-After, before or after WordPress did the work; or, with
`fail_randomly(ratio, seed=…)`, a seeded share of all REST requests fail with 429, 500 or a timeout)
and logs every REST request, so tests can count retries. The harness's own reads (`client()`,
`posts()`, `count_posts()`) carry a header that exempts them from the random faults. It also registers
the post meta `footnotes` as WordPress 6.3+ does (this site is 6.1), so a post's notes can be read back.

    python -m tests.servers.wordpress up     # starts one and prints its URL and password, until Ctrl-C
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

FILES = Path(__file__).with_name("wordpress_files")

PHP_PACKAGES = ("php-cli", "php-mysql", "php-gd", "php-xml", "php-mbstring", "php-curl", "php-intl")
# Unpacked only (apt-get download + dpkg-deb -x): the wordpress package Depends on apache2 | httpd.
# php-getid3 and libjs-* hold the files Debian replaced with symlinks in wp-includes.
WORDPRESS_DEBS = ("wordpress", "php-getid3", "libjs-underscore", "libjs-cropper")
# Only for the private mariadbd, when no MariaDB answers on 127.0.0.1:3306.
MARIADB_PACKAGES = ("mariadb-server-core", "mariadb-client-core")

SHARED_DB = ("127.0.0.1", 3306)
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-password-not-secret"


def cache_dir() -> Path:
    if "COPYDESK_WP_CACHE" in os.environ:
        return Path(os.environ["COPYDESK_WP_CACHE"])
    if os.geteuid() == 0:
        return Path("/var/cache/copydesk-wordpress")
    return Path.home() / ".cache" / "copydesk-wordpress"


def wordpress_tree() -> Path:
    return cache_dir() / "root" / "usr" / "share" / "wordpress"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def missing() -> str | None:
    """Why a WordPress cannot be started here, or None when everything is in place."""
    if shutil.which("php") is None:
        return "php is not installed"
    if not (wordpress_tree() / "wp-load.php").is_file():
        return f"Debian's WordPress files are not unpacked in {cache_dir()}"
    if not _port_open(*SHARED_DB) and not (shutil.which("mariadbd") and shutil.which("mariadb-install-db")):
        return "no MariaDB answers on 127.0.0.1:3306 and mariadbd is not installed"
    return None


# --- deps ---------------------------------------------------------------------------------------


def install_deps(*, with_mariadb: bool | None = None) -> None:
    """Install what WordPressServer needs (root, Debian 12, after `apt-get update`). Idempotent."""
    if with_mariadb is None:
        with_mariadb = not _port_open(*SHARED_DB) and shutil.which("mariadbd") is None
    packages = list(PHP_PACKAGES) + (list(MARIADB_PACKAGES) if with_mariadb else [])
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        ["apt-get", "-o", "DPkg::Lock::Timeout=900", "install", "-y", "--no-install-recommends", *packages],
        check=True,
        env=env,
    )
    root = cache_dir() / "root"
    stamp = root / ".complete"
    if stamp.is_file() and (wordpress_tree() / "wp-load.php").is_file():
        print(f"WordPress files already unpacked in {root} ({stamp.read_text().strip()})")
        return
    cache_dir().mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="unpack-", dir=cache_dir()))
    try:
        # root downloads as root: without this apt warns that _apt cannot write to the folder.
        subprocess.run(
            ["apt-get", "-o", "APT::Sandbox::User=root", "download", *WORDPRESS_DEBS],
            check=True,
            cwd=work,
            env=env,
        )
        debs = sorted(work.glob("*.deb"))
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "root")], check=True)
        (work / "root" / ".complete").write_text(" ".join(d.name for d in debs) + "\n")
        if root.exists():
            shutil.rmtree(root)
        (work / "root").rename(root)  # atomic: a half-unpacked tree is never seen
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"WordPress files unpacked in {root}")


# --- processes ----------------------------------------------------------------------------------


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, read from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def _stop_group(proc: subprocess.Popen | None, timeout: float = 5.0) -> None:
    """SIGTERM to the whole process group (php -S workers outlive their parent), SIGKILL if needed."""
    if proc is None:
        return
    pgid = proc.pid  # started with start_new_session=True: setsid() ran before exec, pgid == pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc.poll()
            if not _group_members(pgid):
                break
            time.sleep(0.02)
        else:
            continue
        break
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def _copy_tree(src: Path, dst: Path) -> None:
    # Follows Debian's symlinks (getid3, libjs-*) so the copy stands alone: PHP resolves symlinks in
    # __DIR__, so a symlink farm would find Debian's own wp-config.php again.
    shutil.copytree(src, dst, symlinks=False, ignore_dangling_symlinks=True)


# --- the server ---------------------------------------------------------------------------------


class WordPressServer:
    """A private WordPress on 127.0.0.1, for one test session. Use as a context manager."""

    def __init__(
        self,
        *,
        port: int | None = None,
        workers: int = 4,
        permalinks: str = "/%postname%/",
        database: str = "auto",  # auto | shared | private
        keep: bool = False,
        state_root: str | None = None,
    ) -> None:
        self.port = port
        self.workers = workers
        self.permalinks = permalinks
        self.database = database
        self.keep = keep
        self.state_root = state_root
        self.user = ADMIN_USER
        self.admin_password = ADMIN_PASSWORD
        self.app_password = ""
        self.dir: Path | None = None
        self.db_name = ""
        self._db: dict[str, str] = {}
        self._php: subprocess.Popen | None = None
        self._mariadb: subprocess.Popen | None = None

    # -- addresses

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"{self.url}/wp-json/"

    @property
    def site_dir(self) -> Path:
        assert self.dir is not None
        return self.dir / "site"

    @property
    def debug_log(self) -> Path:
        assert self.dir is not None
        return self.dir / "wp-debug.log"

    @property
    def server_log(self) -> Path:
        assert self.dir is not None
        return self.dir / "php-server.log"

    @property
    def control_file(self) -> Path:
        assert self.dir is not None
        return self.dir / "control.json"

    @property
    def request_log(self) -> Path:
        assert self.dir is not None
        return self.dir / "requests.jsonl"

    # -- lifecycle

    def __enter__(self) -> WordPressServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> WordPressServer:
        reason = missing()
        if reason:
            raise RuntimeError(
                f"cannot start WordPress: {reason} (run: python -m tests.servers.wordpress deps)"
            )
        root = self.state_root or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
        self.dir = Path(tempfile.mkdtemp(prefix="wpt-", dir=root))
        try:
            if self.port is None:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    self.port = s.getsockname()[1]
            _copy_tree(wordpress_tree(), self.site_dir)
            shutil.copytree(FILES / "mu-plugins", self.site_dir / "wp-content" / "mu-plugins")
            (self.site_dir / "wp-content" / "uploads").mkdir(exist_ok=True)
            self._start_database()
            self._write_config()
            self._install()
            self._serve()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        _stop_group(self._php)
        self._php = None
        if self.db_name and self._db and self._mariadb is None:
            self._drop_database()
        self.db_name = ""
        _stop_group(self._mariadb)
        self._mariadb = None
        if self.dir is not None and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def processes(self) -> list[int]:
        """Live processes this server started (php -S and its workers, a private mariadbd)."""
        return [pid for proc in (self._php, self._mariadb) if proc for pid in _group_members(proc.pid)]

    # -- database

    def _start_database(self) -> None:
        self.db_name = f"wpt_{self.port}_{secrets.token_hex(3)}"
        use_shared = self.database == "shared" or (self.database == "auto" and _port_open(*SHARED_DB))
        if use_shared:
            self._db = {"host": SHARED_DB[0], "port": str(SHARED_DB[1]), "user": "root", "password": ""}
            return
        self._start_private_mariadb()

    def _start_private_mariadb(self) -> None:
        assert self.dir is not None
        datadir = self.dir / "db"
        sock = self.dir / "db.sock"  # unix socket paths are limited to ~107 characters
        template = cache_dir() / "mariadb-template"
        if template.is_dir():
            shutil.copytree(template, datadir)
        else:
            cmd = [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                "--force",
                "--innodb-log-file-size=8M",
            ]
            if os.geteuid() == 0:
                cmd.append("--user=root")
            subprocess.run(cmd, check=True, capture_output=True)
            try:
                tmp = Path(tempfile.mkdtemp(dir=cache_dir()))
                shutil.copytree(datadir, tmp / "t")
                (tmp / "t").rename(template)
                shutil.rmtree(tmp, ignore_errors=True)
            except OSError:
                pass  # no cache: the next session runs mariadb-install-db again
        cmd = [
            "mariadbd",
            "--no-defaults",
            f"--datadir={datadir}",
            f"--socket={sock}",
            "--skip-networking",
            f"--pid-file={self.dir / 'db.pid'}",
            "--innodb-log-file-size=8M",
            f"--log-error={self.dir / 'db.err'}",
        ]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        self._mariadb = subprocess.Popen(
            cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while not sock.exists():
            if self._mariadb.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"mariadbd did not start: {(self.dir / 'db.err').read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.02)
        self._db = {"host": "localhost", "port": "0", "user": "root", "password": "", "socket": str(sock)}

    def _db_env(self) -> dict[str, str]:
        return {
            "WPT_DB_HOST": self._db["host"],
            "WPT_DB_PORT": self._db["port"],
            "WPT_DB_USER": self._db["user"],
            "WPT_DB_PASSWORD": self._db["password"],
            "WPT_DB_SOCKET": self._db.get("socket", ""),
            "WPT_DB_NAME": self.db_name,
        }

    def _drop_database(self) -> None:
        code = (
            "mysqli_report(MYSQLI_REPORT_OFF);"
            "$db = @new mysqli(getenv('WPT_DB_HOST'), getenv('WPT_DB_USER'), getenv('WPT_DB_PASSWORD'), '',"
            " (int) getenv('WPT_DB_PORT'), getenv('WPT_DB_SOCKET') ?: null);"
            "if (!$db->connect_errno) $db->query('DROP DATABASE IF EXISTS `' . getenv('WPT_DB_NAME') . '`');"
        )
        subprocess.run(
            ["php", "-r", code], env={**os.environ, **self._db_env()}, capture_output=True, timeout=30
        )

    # -- WordPress

    def _write_config(self) -> None:
        db = self._db
        host = f"localhost:{db['socket']}" if db.get("socket") else f"{db['host']}:{db['port']}"
        salts = "\n".join(
            f"define({name!r}, {secrets.token_hex(32)!r});"
            for name in (
                "AUTH_KEY",
                "SECURE_AUTH_KEY",
                "LOGGED_IN_KEY",
                "NONCE_KEY",
                "AUTH_SALT",
                "SECURE_AUTH_SALT",
                "LOGGED_IN_SALT",
                "NONCE_SALT",
            )
        )
        config = f"""<?php
// Written by tests/servers/wordpress.py for a test session. Not Debian's loader.
define('DB_NAME', {self.db_name!r});
define('DB_USER', {db["user"]!r});
define('DB_PASSWORD', {db["password"]!r});
define('DB_HOST', {host!r});
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
{salts}
$table_prefix = 'wp_';
define('WP_HOME', {self.url!r});
define('WP_SITEURL', {self.url!r});
define('WP_ENVIRONMENT_TYPE', 'local');   // application passwords over plain HTTP
define('WP_HTTP_BLOCK_EXTERNAL', true);   // no calls to wordpress.org and the like
define('DISABLE_WP_CRON', true);          // no loopback request to wp-cron.php
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_AUTO_UPDATE_CORE', false);
define('FS_METHOD', 'direct');
define('WP_DEBUG', true);
define('WP_DEBUG_DISPLAY', false);        // notices would corrupt the JSON answers
define('WP_DEBUG_LOG', {str(self.debug_log)!r});
define('COPYDESK_TEST_CONTROL', {str(self.control_file)!r});
define('COPYDESK_TEST_REQUESTS', {str(self.request_log)!r});
if (!defined('ABSPATH')) define('ABSPATH', __DIR__ . '/');
require_once ABSPATH . 'wp-settings.php';
"""
        (self.site_dir / "wp-config.php").write_text(config)

    def _php_args(self) -> list[str]:
        return [
            "-d",
            "display_errors=0",
            "-d",
            "memory_limit=512M",
            "-d",
            "upload_max_filesize=256M",
            "-d",
            "post_max_size=256M",
            "-d",
            "max_execution_time=300",
        ]

    def _install(self) -> None:
        env = {
            **os.environ,
            **self._db_env(),
            "WPT_URL": self.url,
            "WPT_PERMALINKS": self.permalinks,
            "WPT_ADMIN_PASSWORD": self.admin_password,
        }
        result = subprocess.run(
            ["php", *self._php_args(), str(FILES / "install.php"), str(self.site_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        if result.returncode != 0 or not lines:
            raise RuntimeError(
                f"WordPress install failed ({result.returncode}): "
                f"{result.stdout[-2000:]} {result.stderr[-2000:]}"
            )
        self.app_password = json.loads(lines[-1])["app_password"]

    def _serve(self) -> None:
        assert self.dir is not None
        env = {**os.environ, "PHP_CLI_SERVER_WORKERS": str(self.workers)}
        log = open(self.server_log, "ab")
        try:
            self._php = subprocess.Popen(
                [
                    "php",
                    *self._php_args(),
                    "-S",
                    f"127.0.0.1:{self.port}",
                    "-t",
                    str(self.site_dir),
                    str(FILES / "router.php"),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # setsid: stopped as a group, with its workers
            )
        finally:
            log.close()
        import httpx  # here, so that `deps` runs on a bare python3 too

        deadline = time.monotonic() + 30
        with httpx.Client(timeout=5) as client:
            while True:
                if self._php.poll() is not None:
                    raise RuntimeError(
                        f"php -S exited ({self._php.returncode}): "
                        f"{self.server_log.read_text(errors='replace')[-2000:]}"
                    )
                try:
                    if client.get(self.rest_url).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("WordPress did not answer /wp-json/ within 30 s")
                time.sleep(0.05)

    # -- helpers for tests

    def client(self, **kwargs) -> httpx.Client:
        """An httpx client on the REST root, authenticated with the application password."""
        import httpx

        kwargs.setdefault("timeout", 60)
        # The harness's own requests are never failed at random (see fail_randomly).
        kwargs["headers"] = {"X-Copydesk-Test-Bypass": "1", **(kwargs.get("headers") or {})}
        return httpx.Client(base_url=self.rest_url, auth=(self.user, self.app_password), **kwargs)

    def php(self, code: str) -> str:
        """Run PHP inside this WordPress (wp-load.php loaded) and return what it printed."""
        load = str(self.site_dir / "wp-load.php")
        script = f"<?php\n$_SERVER['HTTP_HOST'] = '127.0.0.1:{self.port}';\nrequire {load!r};\n{code}\n"
        path = self.dir / f"snippet-{secrets.token_hex(4)}.php"  # type: ignore[operator]
        path.write_text(script)
        try:
            result = subprocess.run(
                ["php", *self._php_args(), str(path)], capture_output=True, text=True, timeout=60
            )
        finally:
            path.unlink(missing_ok=True)
        if result.returncode != 0:
            raise RuntimeError(f"PHP failed: {result.stdout[-2000:]} {result.stderr[-2000:]}")
        return result.stdout

    ALL_STATUSES = "publish,future,draft,pending,private,trash"

    def posts(self, **params) -> list[dict]:
        """The site's posts in every status (trash included), read through REST with context=edit."""
        params = {"status": self.ALL_STATUSES, "context": "edit", "per_page": 100, **params}
        out: list[dict] = []
        with self.client() as client:
            page = 1
            while True:
                response = client.get("wp/v2/posts", params={**params, "page": page})
                response.raise_for_status()
                out.extend(response.json())
                if page >= int(response.headers.get("X-WP-TotalPages", "1")):
                    return out
                page += 1

    def count_posts(self, **params) -> int:
        """How many posts the site holds (every status, trash included), e.g. count_posts(search=marker)."""
        params = {"status": self.ALL_STATUSES, "context": "edit", "per_page": 1, **params}
        with self.client() as client:
            response = client.get("wp/v2/posts", params=params)
            response.raise_for_status()
            return int(response.headers["X-WP-Total"])

    # fault injection

    def _write_control(self, control: dict) -> None:
        tmp = self.control_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(control))
        tmp.replace(self.control_file)

    def control(self) -> dict:
        try:
            return json.loads(self.control_file.read_text() or "{}")
        except FileNotFoundError:
            return {}

    def fail_next(
        self,
        count: int,
        *,
        status: int = 500,
        method: str | None = None,
        route: str | None = None,
        after: bool = False,
        retry_after: float | None = None,
        delay: float | None = None,
        code: str = "copydesk_test_fault",
        message: str = "Failure injected by the test harness.",
    ) -> None:
        """Make the next `count` matching REST requests answer `status`.

        route: a PCRE on the REST route, like '#^/wp/v2/posts$#'; method: GET, POST…

        after=False: answered before WordPress runs the request; after=True: WordPress does the work
        (the post is written) and the answer is replaced, as when the answer is lost on the way back.

        delay: seconds WordPress waits before answering; status=0 with a delay sends the real answer
        late (after=True: the work is done and committed while the client still waits)."""
        control = self.control()
        rule = {
            "status": status,
            "remaining": count,
            "phase": "after" if after else "before",
            "method": method or "",
            "route": route or "",
            "code": code,
            "message": message,
            "served": 0,
        }
        if retry_after is not None:
            rule["retry_after"] = retry_after
        if delay is not None:
            rule["delay"] = delay
        control.setdefault("faults", []).append(rule)
        self._write_control(control)

    def fail_randomly(
        self,
        ratio: float,
        *,
        seed: int | str = 0,
        mix: dict[str, float] | None = None,
        retry_after: float = 1.0,
        delay: float = 5.0,
        after: float = 0.0,
        method: str | None = None,
        route: str | None = None,
    ) -> None:
        """From now on, fail `ratio` of the REST requests (of `method`, on routes matching the PCRE
        `route`), chosen by `seed` (the same decisions as tests/servers/faults.py): kinds from `mix`
        ({"429": w, "500": w, "timeout": w}, equal weights by default); 429 carries Retry-After
        `retry_after`; a timeout holds the request `delay` seconds (make it longer than the client's
        timeout); `after` is the share of faults that hit once WordPress did the work (a post or a
        media item is written, its answer lost). Queued faults (fail_next) come first; requests with the
        header X-Copydesk-Test-Bypass (this harness's own client) are never failed. reset() ends it."""
        from tests.servers.faults import DEFAULT_MIX, RandomFaults

        checked = RandomFaults(ratio, seed=seed, mix=dict(mix or DEFAULT_MIX))  # validates ratio and mix
        control = self.control()
        control["random"] = {
            "ratio": ratio,
            "seed": seed,
            "mix": checked.mix,
            "retry_after": retry_after,
            "delay": delay,
            "after": after,
            "method": method or "",
            "route": route or "",
            "seen": 0,
            "served": {},
        }
        self._write_control(control)

    def random_faults(self) -> dict:
        """{"seen": requests considered, "served": {kind: count}, "total": faults served}."""
        rule = self.control().get("random") or {}
        served = rule.get("served") or {}
        served = {str(k): v for k, v in served.items()} if isinstance(served, dict) else {}
        return {"seen": rule.get("seen", 0), "served": served, "total": sum(served.values())}

    def faults_served(self) -> int:
        return sum(rule.get("served", 0) for rule in self.control().get("faults", []))

    def set_app_passwords_available(self, available: bool | None) -> None:
        """False: WordPress behaves as a non-local site over plain HTTP (application passwords off)."""
        control = self.control()
        if available is None:
            control.pop("app_passwords", None)
        else:
            control["app_passwords"] = available
        self._write_control(control)

    def reset(self) -> None:
        """Remove every fault and flag, and clear the request log."""
        self.control_file.unlink(missing_ok=True)
        self.request_log.unlink(missing_ok=True)

    def requests(self) -> list[dict]:
        """REST requests served since the last reset():
        [{"m": "POST", "route": "/wp/v2/posts", "status": 201, "ms": 21.5, "t": 1790000000.1}, …]
        (ms: PHP's time on it; t: when it arrived, epoch seconds)"""
        try:
            text = self.request_log.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command == "deps":
        install_deps(with_mariadb=True if "--with-mariadb" in argv else None)
        return 0
    if command == "up":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop() runs on the way out
        with WordPressServer() as wp:
            print(
                f"WP_URL={wp.url}\nWP_USER={wp.user}\nWP_APP_PASSWORD={wp.app_password}\nWPT_DIR={wp.dir}",
                flush=True,
            )
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 0
    print("usage: python -m tests.servers.wordpress deps [--with-mariadb] | up", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
