// The admin view: the index and its syncs (GET /admin/status, POST /admin/sync), and the gap report
// (GET /admin/report) with a chart of questions and the not-found rate per day, drawn as SVG here.
"use strict";

const view = {
  admin: document.getElementById("admin"),
  index: document.getElementById("index"),
  syncs: document.getElementById("syncs"),
  sync: document.getElementById("sync"),
  refresh: document.getElementById("refresh"),
  syncStatus: document.getElementById("sync-status"),
  since: document.getElementById("since"),
  space: document.getElementById("space"),
  report: document.getElementById("report"),
  reportStatus: document.getElementById("report-status"),
  signOut: document.getElementById("sign-out"),
};
const SVG = "http://www.w3.org/2000/svg";
let polling = null;

function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString(LANG);
}

function percent(part, whole) {
  return whole ? `${Math.round((100 * part) / whole)} %` : "–";
}

function table(headers, rows) {
  if (!rows.length) return element("p", { className: "hint", text: t("none") });
  const head = element("tr", {}, headers.map((h) => element("th", { text: h, attrs: { scope: "col" } })));
  const body = rows.map((cells) =>
    element(
      "tr",
      {},
      cells.map((cell) => (cell instanceof Node ? element("td", {}, [cell]) : element("td", { text: String(cell) }))),
    ),
  );
  return element("table", {}, [element("thead", {}, [head]), element("tbody", {}, body)]);
}

function facts(target, pairs) {
  target.replaceChildren(...pairs.flatMap(([label, value]) => [element("dt", { text: label }), element("dd", { text: value })]));
}

function showStatus(info) {
  facts(view.index, [
    [t("pages"), String(info.pages)],
    [t("chunks"), String(info.chunks)],
    [t("spaces"), (info.spaces || []).join(", ") || "–"],
    [t("embeddingModel"), info.embedding_model || "–"],
    [t("chatModel"), info.chat_model || t("extractive")],
    [t("collection"), info.collection || "–"],
    [t("lastIngest"), when(info.last_ingest)],
  ]);
  const syncs = info.recent_syncs || [];
  view.syncs.replaceChildren(
    syncs.length
      ? table(
          [t("started"), t("status"), t("duration"), t("changes"), t("errors")],
          syncs.map((s) => [
            when(s.started_at),
            s.ok ? t("ok") : t("failed"),
            `${Number(s.duration_s).toFixed(1)} s`,
            `${s.added} / ${s.updated} / ${s.removed}`,
            errorList(s.errors || []),
          ]),
        )
      : element("p", { className: "hint", text: t("noSyncs") }),
  );
  const chosen = view.space.value;
  view.space.replaceChildren(
    element("option", { text: t("allSpaces"), attrs: { value: "" } }),
    ...(info.spaces || []).map((space) => element("option", { text: space, attrs: { value: space } })),
  );
  view.space.value = chosen;
  view.sync.disabled = Boolean(info.sync_running);
  if (info.sync_running) view.syncStatus.textContent = t("syncRunning");
}

function errorList(errors) {
  if (!errors.length) return "–";
  return element("ul", { className: "errors" }, errors.map((e) => element("li", { text: String(e) })));
}

async function loadStatus() {
  const response = await api("/admin/status");
  if (response.status === 401) return "signin";
  if (!response.ok) {
    view.syncStatus.textContent = await errorText(response);
    return "error";
  }
  const info = await response.json();
  showStatus(info);
  if (info.sync_running && !polling) polling = setInterval(pollSync, 1500);
  return "ok";
}

async function pollSync() {
  const response = await api("/admin/status");
  if (!response.ok) return;
  const info = await response.json();
  showStatus(info);
  if (!info.sync_running) {
    clearInterval(polling);
    polling = null;
    view.syncStatus.textContent = "";
    loadReport();
  }
}

async function startSync() {
  view.sync.disabled = true;
  const response = await api("/admin/sync", { method: "POST" });
  if (response.status === 202) {
    const body = await response.json();
    view.syncStatus.textContent = body.queued_for ? t("syncQueued", { writer: body.queued_for }) : t("syncStarted");
    if (!polling) polling = setInterval(pollSync, 1500);
  } else if (response.status === 409) {
    view.syncStatus.textContent = t("syncBusy");
  } else {
    view.syncStatus.textContent = await errorText(response);
    view.sync.disabled = false;
  }
}

// Bars: questions per day; line: the share of them not found (its own 0-100 % scale).
function chart(days) {
  const width = 640;
  const height = 200;
  const pad = { left: 36, right: 40, top: 12, bottom: 28 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const most = Math.max(1, ...days.map((d) => d.questions));
  const step = plotW / Math.max(1, days.length);
  const total = days.reduce((sum, d) => sum + d.questions, 0);
  const missed = days.reduce((sum, d) => sum + d.not_found, 0);
  const svg = document.createElementNS(SVG, "svg");
  const label = t("chartLabel", { questions: total, days: days.length, rate: percent(missed, total) });
  for (const [name, value] of Object.entries({ viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "chart" })) {
    svg.setAttribute(name, value);
  }
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
    if (text !== undefined) el.textContent = text;
    svg.append(el);
    return el;
  };
  add("line", { x1: pad.left, y1: pad.top + plotH, x2: pad.left + plotW, y2: pad.top + plotH, class: "axis" });
  add("text", { x: pad.left - 6, y: pad.top + 10, class: "tick", "text-anchor": "end" }, String(most));
  add("text", { x: pad.left - 6, y: pad.top + plotH, class: "tick", "text-anchor": "end" }, "0");
  add("text", { x: pad.left + plotW + 6, y: pad.top + 10, class: "tick rate" }, "100 %");
  const points = [];
  days.forEach((day, i) => {
    const x = pad.left + i * step;
    const barH = (plotH * day.questions) / most;
    const bar = add("rect", { x: x + step * 0.15, y: pad.top + plotH - barH, width: Math.max(1, step * 0.7), height: barH, class: "bar" });
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${day.day}: ${day.questions} · ${t("notFound")} ${day.not_found}`;
    bar.append(title);
    const rate = day.questions ? day.not_found / day.questions : 0;
    points.push(`${(x + step / 2).toFixed(1)},${(pad.top + plotH * (1 - rate)).toFixed(1)}`);
  });
  if (points.length) add("polyline", { points: points.join(" "), class: "rate-line" });
  const labelEvery = Math.max(1, Math.ceil(days.length / 8));
  days.forEach((day, i) => {
    if (i % labelEvery === 0) {
      add("text", { x: pad.left + i * step + step / 2, y: height - 8, class: "tick", "text-anchor": "middle" }, String(day.day).slice(5));
    }
  });
  const legend = element("p", { className: "legend" }, [
    element("span", { className: "key bar-key", attrs: { "aria-hidden": "true" } }),
    document.createTextNode(` ${t("legendQuestions")}  `),
    element("span", { className: "key rate-key", attrs: { "aria-hidden": "true" } }),
    document.createTextNode(` ${t("legendNotFound")}`),
  ]);
  return element("figure", { className: "chart-box" }, [svg, legend, element("figcaption", { text: t("byDay") })]);
}

function showReport(report) {
  const feedback = report.feedback || { up: 0, down: 0 };
  const summary = element("dl", { className: "facts" });
  facts(summary, [
    [t("questions"), String(report.questions)],
    [t("answered"), `${report.answered} (${percent(report.answered, report.questions)})`],
    [t("notFound"), `${report.not_found} (${percent(report.not_found, report.questions)})`],
    [t("ratings"), `${feedback.up} / ${feedback.down}`],
  ]);
  const unanswered = (report.unanswered || []).map((u) => [u.question, u.count, when(u.last_asked)]);
  const disliked = (report.disliked || []).map((d) => [
    d.question,
    element("p", { className: "plain", text: d.answer || "" }),
    (d.sources || []).map((s) => `${s.title || s.page_id} (v${s.version})`).join(", ") || "–",
    (d.comments || []).join(" · ") || "–",
  ]);
  const top = (report.top_pages || []).map((p) => [p.title || p.page_id, p.space, p.citations]);
  const parts = [
    summary,
    chart(report.by_day || []),
    element("h3", { text: t("unanswered") }),
    table([t("question"), t("count"), t("lastAsked")], unanswered),
    element("h3", { text: t("disliked") }),
    table([t("question"), t("answer"), t("sources"), t("comments")], disliked),
    element("h3", { text: t("topPages") }),
    table([t("pageTitle"), t("space"), t("count")], top),
  ];
  // Every space's own counts, when the report is not already about one space.
  if (report.spaces && report.spaces.length) {
    const rows = report.spaces.map((row) => [
      row.space,
      row.questions,
      `${row.answered} (${percent(row.answered, row.questions)})`,
      `${row.not_found} (${percent(row.not_found, row.questions)})`,
      `${row.feedback.up} / ${row.feedback.down}`,
    ]);
    parts.push(
      element("h3", { text: t("perSpace") }),
      table([t("space"), t("questions"), t("answered"), t("notFound"), t("ratings")], rows),
    );
  }
  view.report.replaceChildren(...parts);
}

async function loadReport() {
  const query = new URLSearchParams({ since: view.since.value });
  if (view.space.value) query.set("space", view.space.value);
  view.reportStatus.textContent = t("loading");
  const response = await api(`/admin/report?${query}`);
  if (response.status === 404) {
    view.report.replaceChildren();
    view.reportStatus.textContent = t("noReport");
    return;
  }
  if (!response.ok) {
    view.reportStatus.textContent = await errorText(response);
    return;
  }
  const report = await response.json();
  if (!report.questions) {
    // A report of nothing asked yet: said in words rather than as a page of zeros.
    view.report.replaceChildren();
    view.reportStatus.textContent = t("noReport");
    return;
  }
  view.reportStatus.textContent = "";
  showReport(report);
}

const signIn = signInForm({ help: "signInHelpAdmin", onSignedIn: () => start() });

async function start() {
  const state = await loadStatus();
  if (state === "signin") {
    view.admin.hidden = true;
    view.signOut.hidden = true;
    signIn.show(credentials.get() ? t("notSignedInAdmin") : "");
    return false;
  }
  signIn.hide();
  view.admin.hidden = false;
  view.signOut.hidden = !credentials.get();
  await loadReport();
  return true;
}

for (const option of view.since.options) option.textContent = t("days", { days: option.value });
view.sync.addEventListener("click", startSync);
view.refresh.addEventListener("click", () => {
  loadStatus();
  loadReport();
});
view.since.addEventListener("change", loadReport);
view.space.addEventListener("change", loadReport);
view.signOut.addEventListener("click", () => {
  credentials.clear();
  window.location.reload();
});

translatePage();
start();
