// Copydesk editors' page. One small script, no build step, no dependencies.
// Safety rules: data from the API (titles, file names, errors: they come from manuscripts) is only ever
// written with textContent / setAttribute, never parsed as markup; links are checked (safeUrl); the
// bearer token lives in sessionStorage and goes out only in the Authorization header of same-origin
// requests (the page's CSP allows no other script and no other origin to connect to).
"use strict";

(() => {
  const TOKEN_KEY = "copydesk.token";
  const TERMINAL = ["succeeded", "failed", "cancelled"];
  const $ = (selector, root = document) => root.querySelector(selector);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // --- DOM helpers -----------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function safeUrl(value) {
    // Only http(s) links (absolute, or relative to this site) become hrefs.
    try {
      const url = new URL(String(value), location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (err) {
      return null;
    }
  }

  function stateBadge(state) {
    return el("span", { class: `badge state-${String(state).replace(/[^a-z_]/g, "")}`, text: String(state).replace(/_/g, " ") });
  }

  function when(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return isNaN(date) ? "" : date.toLocaleString();
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
    if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
    if (seconds < 90) return `${seconds.toFixed(1)} s`;
    const minutes = Math.floor(seconds / 60);
    return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
  }

  function flash(message, isError = true) {
    const box = $("#flash");
    if (!box) return;
    box.textContent = message;
    box.classList.toggle("error", isError);
    box.hidden = !message;
  }

  // --- the API -----------------------------------------------------------------------------------

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  function toLogin() {
    sessionStorage.removeItem(TOKEN_KEY);
    const next = location.pathname + location.search;
    location.assign(`/ui/login?next=${encodeURIComponent(next)}`);
  }

  function describe(body, status) {
    const detail = body && body.detail;
    if (typeof detail === "string") return detail;
    if (detail) return JSON.stringify(detail);
    return `the server answered ${status}`;
  }

  async function api(path, { method = "GET", json, form } = {}) {
    const headers = { Authorization: `Bearer ${token()}`, Accept: "application/json" };
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = form; // FormData: the browser sets the multipart boundary
    }
    const response = await fetch(path, { method, headers, body, cache: "no-store" });
    if (response.status === 401) {
      toLogin();
      throw new Error("not logged in");
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new Error(describe(data, response.status));
    return data;
  }

  // Server-Sent Events over fetch (EventSource cannot send the Authorization header).
  async function readEvents(url, onEvent, { lastEventId, signal } = {}) {
    const headers = { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" };
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    const response = await fetch(url, { headers, signal, cache: "no-store" });
    if (response.status === 401) {
      toLogin();
      return "stop";
    }
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      throw new Error(describe(data, response.status));
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return "closed";
      buffer += value.replace(/\r/g, "");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = { name: "message", data: [], id: null };
        for (const line of block.split("\n")) {
          if (!line || line.startsWith(":")) continue; // comments are keep-alive pings
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? "" : line.slice(colon + 1);
          if (text.startsWith(" ")) text = text.slice(1);
          if (field === "event") event.name = text;
          else if (field === "data") event.data.push(text);
          else if (field === "id") event.id = text;
        }
        if (!event.data.length) continue;
        if (onEvent(event.name, event.data.join("\n"), event.id) === "stop") {
          reader.cancel().catch(() => {});
          return "stop";
        }
      }
    }
  }

  // Keep a stream open: reconnect (with the last event id) until the handler says stop or `signal`
  // (an AbortController's) aborts it.
  async function live(url, onEvent, onStatus = () => {}, signal = undefined) {
    let lastEventId = null;
    let delay = 500;
    for (;;) {
      if (signal && signal.aborted) return;
      let outcome;
      try {
        onStatus("live");
        outcome = await readEvents(
          url,
          (name, data, id) => {
            if (id) lastEventId = id;
            delay = 500;
            return onEvent(name, data);
          },
          { lastEventId, signal },
        );
      } catch (err) {
        if (signal && signal.aborted) return;
        onStatus(`reconnecting… (${err.message})`);
      }
      if (outcome === "stop") return;
      await sleep(delay);
      delay = Math.min(delay * 2, 10000);
    }
  }

  // --- pages -------------------------------------------------------------------------------------

  async function loginPage() {
    const form = $("#login-form");
    const error = $("#login-error");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const body = new URLSearchParams({ username: $("#email").value, password: $("#password").value });
      try {
        const response = await fetch("/auth/token", { method: "POST", body, cache: "no-store" });
        const data = await response.json().catch(() => null);
        if (!response.ok) throw new Error(describe(data, response.status));
        sessionStorage.setItem(TOKEN_KEY, data.access_token);
        const next = new URLSearchParams(location.search).get("next") || "";
        // Only back into this page (no open redirect).
        location.assign(/^\/ui\/[^/\\]/.test(next) || next === "/ui/" ? next : "/ui/");
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      }
    });
  }

  async function showUser() {
    $("#nav").hidden = false;
    $("#logout").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      location.assign("/ui/login");
    });
    try {
      const me = await api("/users/me");
      $("#who").textContent = `${me.email} (${me.role})`;
    } catch (err) {
      flash(err.message);
    }
  }

  // The runs list, live from /ui/stream.
  async function runsPage() {
    const rows = new Map(); // run id -> <tr>
    const tbody = $("#runs tbody");
    let stream = null; // the AbortController of the open list stream

    function runTitle(run) {
      return run.title || run.filename || (run.document_id ? "(untitled document)" : `${run.workflow} run`);
    }

    function fillRow(tr, run) {
      tr.dataset.state = run.state;
      tr.className = `state-row-${run.state}`;
      const done = run.progress ? run.progress.done : 0;
      const total = run.progress ? Math.max(run.progress.total, 1) : 1;
      const link = el("a", { href: `/ui/runs/${encodeURIComponent(run.id)}`, class: "run-link", text: runTitle(run) });
      tr.replaceChildren(
        el("td", { class: "title" }, link, run.title && run.filename ? el("span", { class: "file", text: run.filename }) : null),
        el("td", { text: run.workflow }),
        el("td", { class: "state" }, stateBadge(run.state)),
        el(
          "td",
          { class: "progress" },
          el("progress", { max: total, value: Math.min(done, total), "aria-label": "progress" }),
          " ",
          el("span", { class: "progress-text muted", text: `${done} of ${run.progress ? run.progress.total : 0}` }),
        ),
        el("td", { class: "muted small", text: when(run.created_at) }),
      );
    }

    function apply(message) {
      for (const run of message.runs) {
        let tr = rows.get(run.id);
        if (!tr) {
          tr = el("tr", { "data-run-id": run.id });
          rows.set(run.id, tr);
        }
        fillRow(tr, run);
      }
      const keep = new Set(message.order);
      for (const [id, tr] of rows) {
        if (!keep.has(id)) {
          tr.remove();
          rows.delete(id);
        }
      }
      message.order.forEach((id, position) => {
        const tr = rows.get(id);
        if (tr && tbody.children[position] !== tr) tbody.insertBefore(tr, tbody.children[position] || null);
      });
      $("#runs-empty").hidden = message.order.length > 0;
    }

    function connect() {
      if (stream) stream.abort(); // the filter changed: close the old stream (browsers allow few at once)
      const mine = (stream = new AbortController());
      rows.clear();
      tbody.replaceChildren();
      const state = $("#state-filter").value;
      const url = `/ui/stream?limit=50${state ? `&state=${encodeURIComponent(state)}` : ""}`;
      live(
        url,
        (name, data) => {
          if (mine.signal.aborted) return "stop";
          if (name === "runs") apply(JSON.parse(data));
          $("#live").textContent = "live";
        },
        (status) => {
          if (!mine.signal.aborted) $("#live").textContent = status;
        },
        mine.signal,
      );
    }

    $("#state-filter").addEventListener("change", connect);
    connect();

    try {
      const workflows = await api("/workflows");
      const select = $("#upload-workflow");
      select.replaceChildren(
        ...workflows.map((wf) =>
          el("option", { value: wf.name, selected: wf.name === "publish_document" ? "selected" : null, text: wf.name }),
        ),
      );
    } catch (err) {
      flash(`could not list the workflows: ${err.message}`);
    }

    $("#upload-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = $("#upload-result");
      const form = new FormData(event.target);
      if (!form.get("status")) form.delete("status");
      const button = $("#upload-submit");
      button.disabled = true;
      result.textContent = "uploading…";
      try {
        const data = await api("/documents", { method: "POST", form });
        const name = data.document ? data.document.filename : "";
        const said = data.updated
          ? `Submitted before: ${name}, its post is updated with the new options `
          : data.duplicate
            ? `Already submitted, nothing new to apply: ${name} `
            : `Submitted ${name} `;
        result.replaceChildren(
          said,
          data.run ? el("a", { href: `/ui/runs/${encodeURIComponent(data.run.id)}`, id: "upload-run-link", text: "see its run" }) : "",
          safeUrl(data.url) ? " · " : "",
          safeUrl(data.url) ? el("a", { href: safeUrl(data.url), rel: "noopener", target: "_blank", text: "its post" }) : "",
        );
        event.target.reset();
      } catch (err) {
        result.textContent = `Not submitted: ${err.message}`;
      } finally {
        button.disabled = false;
      }
    });
  }

  // One run: timeline, actions, article, diff; refreshed on each of its events.
  async function runPage() {
    const runId = document.body.dataset.runId;
    let run = null;
    let documentName = null;
    let articleKey = null;
    let lastFrameState = null;

    function renderHeader(article) {
      const title = (article && article.title) || documentName || `${run.workflow} run`;
      $("#run-title").textContent = title;
      document.title = `${title} · Copydesk`;
      $("#run-workflow").textContent = `${run.workflow} v${run.workflow_version}`;
      $("#run-state").replaceWith(Object.assign(stateBadge(run.state), { id: "run-state" }));
      const progress = $("#run-progress");
      progress.max = Math.max(run.progress.total, 1);
      progress.value = Math.min(run.progress.done, progress.max);
      $("#run-progress-text").textContent = `${run.progress.done} of ${run.progress.total}`;
      const error = $("#run-error");
      error.textContent = run.error ? `${run.error_step ? `${run.error_step}: ` : ""}${run.error}` : "";
      error.hidden = !run.error;
      $("#run-warnings").replaceChildren(...(run.warnings || []).map((w) => el("li", { text: w })));
      const can = {
        approve: run.state === "awaiting_approval",
        reject: run.state === "awaiting_approval",
        resume: run.state === "failed" || run.state === "cancelled",
        cancel: !TERMINAL.includes(run.state),
      };
      for (const [action, allowed] of Object.entries(can)) $(`#${action}`).disabled = !allowed;
    }

    function renderTimeline() {
      const starts = run.steps.map((s) => Date.parse(s.started_at)).filter((t) => !isNaN(t));
      const origin = Math.min(...starts, Date.parse(run.started_at) || Infinity);
      const ends = run.steps.map((s) => Date.parse(s.finished_at)).filter((t) => !isNaN(t));
      const finish = TERMINAL.includes(run.state) ? Math.max(...ends, origin + 1) : Date.now();
      const span = Math.max(finish - origin, 1);
      $("#timeline").replaceChildren(
        ...run.steps.map((step) => {
          const started = Date.parse(step.started_at);
          const ended = Date.parse(step.finished_at);
          const seconds = !isNaN(started) ? ((isNaN(ended) ? Date.now() : ended) - started) / 1000 : null;
          const retries = (step.attempt_log || []).filter((a) => a && a.next_wait !== undefined).length;
          const bar = el("div", { class: "bar", title: "when the step ran, within the run" });
          if (!isNaN(started) && isFinite(origin)) {
            const left = ((started - origin) / span) * 100;
            const right = (((isNaN(ended) ? Date.now() : ended) - origin) / span) * 100;
            const piece = el("span");
            piece.style.left = `${Math.max(0, Math.min(100, left))}%`;
            piece.style.width = `${Math.max(0, Math.min(100, right) - Math.max(0, left))}%`;
            bar.append(piece);
          }
          const meta = [
            step.attempts ? `${step.attempts} attempt${step.attempts === 1 ? "" : "s"}` : null,
            step.attempts || retries ? `${retries} ${retries === 1 ? "retry" : "retries"}` : null,
            seconds !== null ? duration(seconds) : null,
            step.started_at ? `started ${when(step.started_at)}` : null,
          ].filter(Boolean);
          const failedItems = (step.items || []).filter((i) => i.state === "failed" || i.state === "retrying");
          return el(
            "li",
            { class: `state-${step.state}`, "data-step": step.name, "data-state": step.state },
            el(
              "div",
              {},
              el("div", { class: "step-name", text: step.name }),
              el("div", { class: "step-meta", text: `${step.task} · ${step.queue} queue` }),
            ),
            el(
              "div",
              {},
              stateBadge(step.state),
              " ",
              el("span", { class: "step-meta", "data-role": "retries", text: meta.join(" · ") }),
              bar,
              step.summary ? el("div", { class: "summary", text: step.summary }) : null,
              step.error && step.state !== "succeeded"
                ? el("div", { class: "error", text: `${step.error}${step.error_code ? ` [${step.error_code}]` : ""}` })
                : null,
              step.state === "retrying" && step.next_attempt_at
                ? el("div", { class: "step-meta", text: `next attempt ${when(step.next_attempt_at)}` })
                : null,
              (step.attempt_log || []).length
                ? el(
                    "ul",
                    { class: "attempts" },
                    ...step.attempt_log.map((a) =>
                      el("li", {
                        text: `attempt ${a.attempt}: ${a.error || "failed"}${a.next_wait !== undefined ? ` — retried after ${duration(a.next_wait)}` : ""}`,
                      }),
                    ),
                  )
                : null,
              step.items_total !== null && step.items_total !== undefined
                ? el("div", {
                    class: "items",
                    text: `items: ${step.items_done} of ${step.items_total} done${step.items_failed ? `, ${step.items_failed} failed` : ""}`,
                  })
                : null,
              failedItems.length
                ? el(
                    "ul",
                    { class: "attempts" },
                    ...failedItems.map((i) => el("li", { text: `item ${i.index} (${i.key}): ${i.error || i.state}` })),
                  )
                : null,
            ),
          );
        }),
      );
    }

    function renderDiff(diff) {
      const pre = $("#diff");
      const summary = $("#diff-summary");
      if (!diff) {
        pre.replaceChildren();
        return;
      }
      const engine = diff.engine ? `edited by ${diff.engine}` : "not edited yet";
      summary.textContent = diff.changed === false ? `${engine}: no change to the text` : engine;
      let text = typeof diff.unified === "string" ? diff.unified : null;
      if (text === null) {
        const copy = { ...diff };
        delete copy.article_id;
        text = JSON.stringify(copy, null, 2);
      }
      pre.replaceChildren(
        ...text.split("\n").map((line) => {
          const kind = line.startsWith("@@")
            ? "hunk"
            : line.startsWith("+") && !line.startsWith("+++")
              ? "add"
              : line.startsWith("-") && !line.startsWith("---")
                ? "del"
                : null;
          return el("span", { class: kind }, `${line}\n`);
        }),
      );
    }

    function setFrame(frame, link, url) {
      const safe = safeUrl(url);
      if (!safe) return;
      link.href = safe;
      frame.src = safe;
    }

    async function renderArticle(force) {
      if (!run.article_id) return null;
      const key = `${run.state}:${run.progress.done}`;
      if (!force && key === articleKey) return null;
      articleKey = key;
      const article = await api(`/articles/${encodeURIComponent(run.article_id)}`);
      $("#article").hidden = false;
      const fields = [
        ["Title", article.title],
        ["Excerpt", article.excerpt],
        ["Slug", article.slug],
        ["Tags", (article.tags || []).join(", ")],
        ["Category", (article.categories || []).join(", ")],
        ["Status", article.status],
        ["Edited by", article.edit_engine || "not edited yet"],
        ["Edit notes", (article.edit_warnings || []).join("; ")],
      ].filter(([, value]) => value);
      const list = fields.flatMap(([name, value]) => [el("dt", { text: name }), el("dd", { text: value })]);
      const published = safeUrl(article.wp_url);
      if (published) list.push(el("dt", { text: "Published" }), el("dd", {}, el("a", { href: published, target: "_blank", rel: "noopener noreferrer", text: published })));
      $("#article-fields").replaceChildren(...list);
      // The frames reload when the run changes state (e.g. once the images are published).
      if (lastFrameState !== run.state) {
        lastFrameState = run.state;
        const preview = new URL(article.preview_url, location.href);
        const original = new URL(`/ui/original/${encodeURIComponent(article.id)}`, location.href);
        original.searchParams.set("token", preview.searchParams.get("token") || "");
        setFrame($("#original-frame"), $("#original-link"), original.href);
        setFrame($("#preview-frame"), $("#preview-link"), preview.href);
      }
      try {
        renderDiff(await api(`/articles/${encodeURIComponent(article.id)}/diff`));
      } catch (err) {
        $("#diff-summary").textContent = `the diff is not available: ${err.message}`;
      }
      return article;
    }

    let article = null;
    async function refresh(force = false) {
      run = await api(`/runs/${encodeURIComponent(runId)}`);
      if (run.document_id && documentName === null) {
        documentName = "";
        api(`/documents/${encodeURIComponent(run.document_id)}`)
          .then((doc) => {
            documentName = doc.filename;
            renderHeader(article);
          })
          .catch(() => {});
      }
      renderTimeline();
      renderHeader(article);
      try {
        article = (await renderArticle(force)) || article;
        renderHeader(article);
      } catch (err) {
        flash(err.message);
      }
      document.body.dataset.runState = run.state;
    }

    // Many events arrive in a burst (a fan-out of images): refresh at most every 250 ms.
    let pending = null;
    let running = Promise.resolve();
    function scheduleRefresh(force = false) {
      if (pending) return;
      pending = setTimeout(() => {
        pending = null;
        running = running.then(() => refresh(force)).catch((err) => flash(err.message));
      }, 250);
    }

    for (const button of document.querySelectorAll("button[data-action]")) {
      button.addEventListener("click", async () => {
        const action = button.dataset.action;
        if (action === "cancel" && !confirm("Cancel this run?")) return;
        button.disabled = true;
        try {
          const reason = $("#reject-reason").value.trim();
          run = await api(`/runs/${encodeURIComponent(runId)}/${action}`, {
            method: "POST",
            json: action === "reject" ? { reason: reason || null } : undefined,
          });
          flash(`${action}: the run is now ${run.state.replace(/_/g, " ")}`, false);
          await refresh(true);
          if (!TERMINAL.includes(run.state)) follow();
        } catch (err) {
          flash(`${action} failed: ${err.message}`);
          scheduleRefresh();
        }
      });
    }

    let following = false;
    function follow() {
      if (following) return;
      following = true;
      live(`/runs/${encodeURIComponent(runId)}/events`, (name) => {
        scheduleRefresh(name === "end");
        if (name === "end") {
          following = false;
          return "stop";
        }
      });
    }

    try {
      await refresh(true);
    } catch (err) {
      flash(err.message);
      return;
    }
    follow();
  }

  // --- boot --------------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.body.dataset.page;
    if (page === "login") {
      loginPage();
      return;
    }
    if (!token()) {
      toLogin();
      return;
    }
    showUser();
    if (page === "runs") runsPage();
    else if (page === "run") runPage();
  });
})();
