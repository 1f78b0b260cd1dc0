// The hosted payment page of a checkout session: the shop, the amount, the items and
// the order's QR (and a link that hands the same EMV payload to a wallet app on this
// phone), followed live by server-sent events; paid → back to the shop's return_url.
// It knows only its own session: the token in its address.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const { t, money } = qrgateI18n;
  const token = location.pathname.split("/")[2] || "";
  const base = "/pay/" + encodeURIComponent(token);
  const REDIRECT_MS = 1500;
  let session = null;
  let countdown = null;
  let events = null;

  function render(view) {
    session = view;
    $("session").classList.remove("hidden");
    $("shop").textContent = view.merchant_name;
    $("amount").textContent = money(view.amount, view.currency);
    $("description").textContent = view.description || "";
    const rows = $("item-rows");
    rows.replaceChildren();
    for (const item of view.line_items) {
      const tr = document.createElement("tr");
      [item.name, t("pay.qty") + item.quantity, money(item.amount, view.currency)].forEach((text, i) => {
        const td = document.createElement("td");
        td.textContent = text;
        if (i > 0) td.className = "num";
        tr.append(td);
      });
      rows.append(tr);
    }
    $("items").classList.toggle("hidden", view.line_items.length === 0);
    const open = view.status === "open";
    $("open-view").classList.toggle("hidden", !open);
    $("status").classList.toggle("hidden", open);
    $("back-p").classList.toggle("hidden", open || view.status === "complete");
    $("back").href = view.cancel_url;
    if (open) {
      if (!$("qr").getAttribute("src")) $("qr").src = base + "/qr.svg";
      $("qr").alt = t("qr.scan") + ": " + money(view.amount, view.currency);
      $("wallet-link").href = "qrgate://pay?payload=" + encodeURIComponent(view.qr_payload);
      clearInterval(countdown);
      countdown = qrgateI18n.countdown($("countdown"), view.expires_at);
      return;
    }
    clearInterval(countdown);
    const status = $("status");
    const done = view.status === "complete";
    status.className = "status " + (done ? "ok" : "bad");
    status.dataset.mark = done ? "✓" : "✕";
    status.textContent = done ? t("pay.done") : view.status === "expired" ? t("pay.expired") : t("pay.cancelled");
    if (events) { events.close(); events = null; }
    if (done && view.redirect_url) setTimeout(() => location.assign(view.redirect_url), REDIRECT_MS);
  }

  // EventSource reconnects by itself and sends Last-Event-ID; the server ends the
  // stream once the session is no longer open.
  function follow() {
    events = new EventSource(base + "/stream");
    events.addEventListener("order", (e) => render(JSON.parse(e.data)));
    events.onerror = () => {
      if (session && session.status !== "open" && events) { events.close(); events = null; }
    };
  }

  async function cancel() {
    $("cancel").disabled = true;
    try {
      const res = await fetch(base + "/cancel", { method: "POST", cache: "no-store" });
      const view = await res.json();
      if (res.ok) {
        render(view);
        if (view.status === "cancelled") location.assign(view.cancel_url);
      }
    } finally {
      $("cancel").disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    qrgateI18n.apply();
    $("lang").addEventListener("click", () => { qrgateI18n.toggle(); if (session) render(session); });
    $("cancel").addEventListener("click", cancel);
    let res;
    try {
      res = await fetch(base + "/session", { cache: "no-store" });
    } catch (e) {
      $("alert").textContent = t("err.network");
      return;
    }
    if (!res.ok) { $("alert").textContent = t("pay.notfound"); return; }
    render(await res.json());
    if (session.status === "open") follow();
  });
})();
