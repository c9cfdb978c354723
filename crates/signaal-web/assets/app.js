// The live feed of the coordinator's page: classified signals over Server-Sent Events, each
// with its evidence highlighted. The browser's EventSource reconnects by itself and sends the
// last event's id (Last-Event-ID); the server then sends everything after it, or `reset` when
// it no longer can. Everything else on the page is rendered by the server.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const feed = document.getElementById("live-feed");
  const status = document.getElementById("live-status");
  const KEEP = 100;
  const enc = new TextEncoder();
  const dec = new TextDecoder();

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Evidence offsets are UTF-8 byte offsets into the text: cut the bytes, not the UTF-16 string.
  function highlighted(text, spans) {
    const bytes = enc.encode(text);
    // A span that starts or ends inside a character (a continuation byte) is left out.
    const inside = (i) => i < bytes.length && (bytes[i] & 0xc0) === 0x80;
    const ok = spans
      .filter((s) => s.start < s.end && s.end <= bytes.length && !inside(s.start) && !inside(s.end))
      .sort((a, b) => a.start - b.start || b.end - a.end);
    const merged = [];
    for (const s of ok) {
      const last = merged[merged.length - 1];
      if (last && s.start < last.end) {
        last.end = Math.max(last.end, s.end);
        if (!last.labels.includes(s.label)) last.labels.push(s.label);
      } else {
        merged.push({ start: s.start, end: s.end, labels: [s.label] });
      }
    }
    const p = el("p", { class: "text" });
    let at = 0;
    for (const m of merged) {
      p.append(dec.decode(bytes.slice(at, m.start)));
      p.append(el("mark", { title: m.labels.join(", ") }, dec.decode(bytes.slice(m.start, m.end))));
      at = m.end;
    }
    p.append(dec.decode(bytes.slice(at)));
    return p;
  }

  function spans(tags, labelOf) {
    const out = [];
    for (const t of tags || []) {
      for (const e of t.evidence || []) {
        if (e.field) continue;
        out.push({ start: e.start, end: e.end, label: labelOf(t.id) });
      }
    }
    return out;
  }

  const themeLabel = (id) => data.themes[id] || id;
  const subjectLabel = (id) => data.subjects[id] || id;

  function item(s) {
    const li = el("li", { class: "signal live", "data-id": s.id });
    const meta = el("div", { class: "meta" });
    const when = new Date(s.occurred_at);
    meta.append(el("time", { datetime: s.occurred_at }, when.toISOString().slice(0, 16).replace("T", " ")));
    for (const [cls, v] of [["channel", s.channel], ["kind", s.kind], ["cause", s.cause]]) {
      meta.append(" ", el("span", { class: "chip " + cls }, v));
    }
    if (typeof s.impact === "number") meta.append(" ", el("span", { class: "chip impact" }, "impact " + s.impact.toFixed(1)));
    li.append(meta);
    if (s.subject) li.append(el("p", { class: "mail-subject" }, s.subject));
    li.append(highlighted(s.text, spans(s.themes, themeLabel).concat(spans(s.subjects, subjectLabel))));
    const tags = el("div", { class: "tags" });
    for (const t of s.themes || []) tags.append(el("span", { class: "chip theme", "data-theme": t.id }, themeLabel(t.id)));
    for (const t of s.subjects || []) tags.append(el("span", { class: "chip subject", "data-subject": t.id }, subjectLabel(t.id)));
    li.append(tags);
    return li;
  }

  // Empty filters stay out of the URL, so a shared link says only what was chosen.
  const form = document.getElementById("filters");
  form.addEventListener("submit", () => {
    for (const f of form.querySelectorAll("select, input")) if (!f.value) f.disabled = true;
  });
  window.addEventListener("pageshow", () => {
    for (const f of form.querySelectorAll("select, input")) f.disabled = false;
  });

  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(data.filter)) if (v) params.set(k, v);
  const source = new EventSource("/live/signals" + (params.toString() ? "?" + params : ""));
  // The status (a live region) says how many arrived, rather than reading each signal out.
  let arrived = 0;
  function say(state) {
    status.dataset.state = state;
    const base = state === "open" ? data.text.connected : data.text.disconnected;
    status.textContent = arrived ? `${base} · ${arrived} ${data.text.new}` : base;
  }
  source.addEventListener("open", () => say("open"));
  source.addEventListener("error", () => say("retrying"));
  source.addEventListener("signal", (ev) => {
    let s;
    try {
      s = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    if (feed.querySelector('[data-id="' + CSS.escape(s.id) + '"]')) return;
    feed.prepend(item(s));
    while (feed.children.length > KEEP) feed.lastElementChild.remove();
    arrived++;
    say(status.dataset.state || "open");
  });
  // The stream could not resume where this page left off: say so, with a reload.
  source.addEventListener("reset", () => {
    const li = el("li", { class: "notice" });
    const a = el("a", { href: location.href }, data.text.reset);
    li.append(a);
    feed.prepend(li);
  });
})();
