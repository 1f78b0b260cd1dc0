// The till: sign in with an API key (kept in this tab's sessionStorage only, sent only
// in the Authorization header), charge with a keypad, show the order's QR, follow the
// order by server-sent events (the long-poll when a stream cannot be had), and see
// today's orders, refunds, the shift close and the day's report.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const { t, money } = qrgateI18n;
  const KEY = "qrgate.key";          // sessionStorage: this tab only
  const OPEN = "qrgate.openOrder";   // the order on the screen, to resume after a reload
  const AMOUNT_CHARS_MAX = 13;
  const ORDER_SECONDS = 300;
  let me = null;                     // GET /v1/me
  let amountText = "0";
  let follow = null;                 // AbortController of the order being followed
  let countdown = null;
  let current = null;                // the order on the screen
  let refunding = null;

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const key = () => sessionStorage.getItem(KEY);

  async function api(method, path, body, accept, extraHeaders) {
    const headers = Object.assign({ Authorization: "Bearer " + key() }, extraHeaders || {});
    if (body) headers["Content-Type"] = "application/json";
    if (accept) headers.Accept = accept;
    let res;
    try {
      res = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined, cache: "no-store" });
    } catch (e) {
      throw { code: "network" };
    }
    const json = (res.headers.get("content-type") || "").includes("json");
    const data = json ? await res.json() : await res.text();
    if (!res.ok) throw (json && data.error) || { code: "other" };
    return data;
  }

  function say(err) {
    $("alert").textContent = err ? qrgateI18n.error(err.code || "other") : "";
  }

  function show(id, visible) { $(id).classList.toggle("hidden", !visible); }

  function when(iso) {
    return new Date(iso).toLocaleString(qrgateI18n.lang === "zh" ? "zh-CN" : "en", { timeZone: me.time_zone });
  }

  // ---- sign in ------------------------------------------------------------------
  async function signIn(candidate) {
    sessionStorage.setItem(KEY, candidate);
    try {
      me = await api("GET", "/v1/me");
    } catch (e) {
      sessionStorage.removeItem(KEY);
      me = null;
      say(e);
      return false;
    }
    say(null);
    $("shop").textContent = me.merchant_name + (me.key_name ? " · " + me.key_name : "");
    show("signin", false);
    show("app", true);
    show("signout", true);
    document.querySelector('[data-tab="report"]').classList.toggle("hidden", !me.scopes.includes("reports"));
    $("dot").disabled = me.currency_minor_units === 0;
    tab("charge");
    watchStaticPayments();
    const open = sessionStorage.getItem(OPEN);
    if (open) {
      try {
        showOrder(await api("GET", "/v1/orders/" + encodeURIComponent(open)));
      } catch (e) {
        sessionStorage.removeItem(OPEN);
      }
    }
    return true;
  }

  // ---- payments through the shop's printed (static) codes ----------------------
  // Such a payment makes its own order, which no till follows: look for new ones every
  // few seconds while signed in, announce each once, and refresh Today if it is open.
  const STATIC_POLL_MS = 5000;
  let staticWatch = null;
  function watchStaticPayments() {
    let since = new Date().toISOString();
    const seen = new Set();
    staticWatch = setInterval(async () => {
      let page;
      try {
        page = await api("GET", "/v1/orders?status=paid&limit=20&from=" + encodeURIComponent(since));
      } catch (e) {
        return; // the next look tries again
      }
      const fresh = page.items.filter((o) => o.static_code_id && !seen.has(o.id));
      if (page.items.length > 0) {
        // A payment's order bears its transaction's start: look a little further back
        // than the newest seen, and let `seen` drop the repeats (bounded).
        since = new Date(Date.parse(page.items[0].created_at) - 10000).toISOString();
      }
      if (fresh.length === 0) return;
      if (seen.size > 1000) seen.clear();
      page.items.forEach((o) => seen.add(o.id));
      const last = fresh[0];
      $("static-paid").textContent = t("static.received")
        .replace("{amount}", money(last.amount, last.currency)).replace("{code}", last.terminal_id || "");
      show("static-paid", true);
      if (!$("tab-today").classList.contains("hidden") && !$("order-search").value.trim()) loadToday();
    }, STATIC_POLL_MS);
  }

  function signOut() {
    clearInterval(staticWatch);
    stopFollowing();
    sessionStorage.clear();
    location.reload();
  }

  // ---- tabs ---------------------------------------------------------------------
  function tab(name) {
    document.querySelectorAll("#tabs button").forEach((b) => {
      if (b.dataset.tab === name) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
    });
    ["charge", "today", "shift", "report"].forEach((n) => show("tab-" + n, n === name));
    say(null);
    if (name === "today") loadToday();
    if (name === "shift") showShift();
    if (name === "report" && !$("report-date").value) $("report-date").value = todayIn(me.time_zone);
  }

  // ---- keypad -------------------------------------------------------------------
  function press(k) {
    let next = amountText;
    if (k === "Backspace") next = next.length > 1 ? next.slice(0, -1) : "0";
    else if (k === "Clear") next = "0";
    else if (k === ".") {
      if (me.currency_minor_units === 0 || next.includes(".")) return;
      next += ".";
    } else if (/^[0-9]$/.test(k)) {
      const decimals = next.includes(".") ? next.split(".")[1].length : -1;
      if (decimals >= me.currency_minor_units) return;
      next = next === "0" ? k : next + k;
    } else return;
    if (next.length > AMOUNT_CHARS_MAX) return;
    amountText = next;
    $("amount").textContent = amountText;
  }

  function amountForWire() {
    let text = amountText.endsWith(".") ? amountText.slice(0, -1) : amountText;
    if (Number(text) <= 0) return null;
    if (me.currency_minor_units > 0) {
      const [whole, frac = ""] = text.split(".");
      text = whole + "." + frac.padEnd(me.currency_minor_units, "0");
    }
    return text;
  }

  // ---- charge -------------------------------------------------------------------
  async function charge(amount) {
    if (!amount) { $("alert").textContent = t("err.amount"); return; }
    const typed = $("reference").value.trim();
    const reference = typed || "T" + Date.now().toString(36).toUpperCase();
    $("charge").disabled = true;
    try {
      const order = await api("POST", "/v1/orders", {
        amount, currency: me.currency, merchant_reference: reference, expires_in_seconds: ORDER_SECONDS,
      });
      say(null);
      showOrder(order);
    } catch (e) {
      say(e);
    } finally {
      $("charge").disabled = false;
    }
  }

  async function showOrder(order) {
    current = order;
    sessionStorage.setItem(OPEN, order.id);
    if (order.status !== "pending") { showResult(order); return; }
    show("keypad-view", false);
    show("result-view", false);
    show("qr-view", true);
    $("qr-shop").textContent = me.merchant_name;
    $("qr-amount").textContent = money(order.amount, order.currency);
    const svg = await fetch("/v1/orders/" + encodeURIComponent(order.id) + "/qr.svg",
      { headers: { Authorization: "Bearer " + key() }, cache: "no-store" });
    if (svg.ok) {
      const old = $("qr-img").src;
      $("qr-img").src = URL.createObjectURL(await svg.blob());
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      $("qr-img").alt = t("qr.scan") + ": " + money(order.amount, order.currency);
    }
    clearInterval(countdown);
    countdown = qrgateI18n.countdown($("countdown"), order.expires_at);
    followOrder(order.id);
  }

  function stopFollowing() {
    if (follow) follow.abort();
    follow = null;
    clearInterval(countdown);
  }

  // The order's events; true once it has left pending (the stream then ends).
  function onOrder(order) {
    if (!current || order.id !== current.id) return true;
    current = order;
    if (order.status === "pending") return false;
    showResult(order);
    return true;
  }

  async function followOrder(id) {
    stopFollowing();
    const ctl = new AbortController();
    follow = ctl;
    let lastEventId = null;
    let failures = 0;
    while (!ctl.signal.aborted) {
      try {
        const headers = { Authorization: "Bearer " + key(), Accept: "text/event-stream" };
        if (lastEventId) headers["Last-Event-ID"] = lastEventId;
        const res = await fetch("/v1/orders/" + encodeURIComponent(id) + "/stream",
          { headers, signal: ctl.signal, cache: "no-store" });
        if (!res.ok || !res.body) throw new Error("stream answered " + res.status);
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffered = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffered += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffered.indexOf("\n\n")) >= 0) {
            const block = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            let data = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("id: ")) lastEventId = line.slice(4);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            if (data && onOrder(JSON.parse(data))) { ctl.abort(); return; }
          }
        }
        failures = 0;
      } catch (e) {
        if (ctl.signal.aborted) return;
        if (++failures >= 3) { longPoll(id, ctl); return; }
        await sleep(1000);
      }
    }
  }

  // The fallback: the order's long-poll, until it leaves pending.
  async function longPoll(id, ctl) {
    while (!ctl.signal.aborted) {
      try {
        const order = await api("GET", "/v1/orders/" + encodeURIComponent(id) + "?wait_seconds=25");
        if (onOrder(order)) return;
      } catch (e) {
        await sleep(2000);
      }
    }
  }

  function showResult(order) {
    stopFollowing();
    current = order;
    show("keypad-view", false);
    show("qr-view", false);
    show("result-view", true);
    const paid = ["paid", "partially_refunded", "refunded"].includes(order.status);
    const status = $("result-status");
    status.className = "status " + (paid ? "ok" : "bad");
    status.dataset.mark = paid ? "✓" : "✕";
    status.textContent = paid ? t("paid.title") : order.status === "expired" ? t("expired.title") : t("closed.title");
    const lines = [];
    if (paid) {
      lines.push(["paid.amount", money(order.amount, order.currency)]);
      if (order.discount && Number(order.discount) > 0) lines.push(["paid.discount", money(order.discount, order.currency)]);
      if (order.tip && Number(order.tip) > 0) lines.push(["paid.tip", money(order.tip, order.currency)]);
      if (order.convenience_fee) lines.push(["paid.convenience_fee", money(order.convenience_fee, order.currency)]);
      if (order.charged && (order.charged !== order.amount || order.charged_currency !== order.currency)) {
        lines.push(["paid.charged", money(order.charged, order.charged_currency)]);
      }
      lines.push(["paid.time", when(order.paid_at)]);
      lines.push(["paid.payment", order.payment_id]);
    } else {
      lines.push(["paid.amount", money(order.amount, order.currency)]);
    }
    const receipt = $("receipt");
    receipt.replaceChildren();
    for (const [label, value] of lines) {
      const dt = document.createElement("dt");
      dt.textContent = t(label);
      const dd = document.createElement("dd");
      dd.textContent = value;
      receipt.append(dt, dd);
    }
    show("print", paid);
    show("again", !paid);
    $("next").focus();
  }

  function newSale() {
    stopFollowing();
    sessionStorage.removeItem(OPEN);
    current = null;
    amountText = "0";
    $("amount").textContent = amountText;
    $("reference").value = "";
    show("qr-view", false);
    show("result-view", false);
    show("keypad-view", true);
    $("amount").focus();
  }

  async function cancelOrder() {
    if (!current) return;
    try {
      showResult(await api("POST", "/v1/orders/" + encodeURIComponent(current.id) + "/close"));
    } catch (e) {
      say(e);
    }
  }

  // ---- today --------------------------------------------------------------------
  // The date today where the shop is, and the instant its day began.
  function todayIn(tz) {
    return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" })
      .format(new Date());
  }
  function dayStart(tz) {
    const [y, m, d] = todayIn(tz).split("-").map(Number);
    const target = Date.UTC(y, m - 1, d);
    let guess = target;
    for (let i = 0; i < 3; i++) {
      const parts = new Intl.DateTimeFormat("en-GB", { timeZone: tz, hourCycle: "h23", year: "numeric",
        month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }).formatToParts(new Date(guess));
      const get = (k) => Number(parts.find((p) => p.type === k).value);
      guess -= Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute")) - target;
    }
    return new Date(guess).toISOString();
  }

  function madeBy(order) {
    if (order.static_code_id) return t("static.code") + " · " + (order.terminal_id || order.static_code_id);
    return order.created_by_key_id === me.key_id ? (me.key_name || me.key_id) : (order.created_by_key_id || "");
  }

  async function loadToday() {
    const filter = $("key-filter").value;
    // A search looks at every day; otherwise today's orders.
    const q = $("order-search").value.trim();
    const query = (q ? "?limit=50&q=" + encodeURIComponent(q) : "?limit=200&from=" + encodeURIComponent(dayStart(me.time_zone))) +
      (filter ? "&key_id=" + encodeURIComponent(filter) : "");
    let page;
    try {
      page = await api("GET", "/v1/orders" + query);
    } catch (e) {
      say(e);
      return;
    }
    const rows = $("today-rows");
    rows.replaceChildren();
    const keys = new Set([me.key_id]);
    for (const order of page.items) {
      if (order.created_by_key_id) keys.add(order.created_by_key_id);
      const tr = document.createElement("tr");
      const cells = [when(order.created_at), money(order.amount, order.currency), t("status." + order.status),
        order.merchant_reference, madeBy(order)];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        td.textContent = text;
        if (i === 1) td.className = "num";
        tr.append(td);
      });
      const action = document.createElement("td");
      if (me.scopes.includes("refunds") && ["paid", "partially_refunded"].includes(order.status)) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = t("refund.go");
        b.setAttribute("aria-label", t("refund.go") + " " + order.merchant_reference);
        b.addEventListener("click", () => askRefund(order));
        action.append(b);
      }
      tr.append(action);
      rows.append(tr);
    }
    show("today-empty", page.items.length === 0 && !q);
    show("search-empty", page.items.length === 0 && !!q);
    const select = $("key-filter");
    if (select.options.length === 0 || select.dataset.keys !== [...keys].join(",")) {
      select.replaceChildren(new Option(t("today.all"), ""));
      for (const k of keys) select.append(new Option(k === me.key_id ? (me.key_name || k) : k, k));
      select.value = filter;
      select.dataset.keys = [...keys].join(",");
    }
  }

  // Amounts as the wire writes them ("12.30") to and from whole minor units, exactly.
  function toMinor(text) {
    const units = me.currency_minor_units;
    const [whole, fraction = ""] = text.split(".");
    return BigInt(whole) * 10n ** BigInt(units) + BigInt((fraction + "0".repeat(units)).slice(0, units) || "0");
  }
  function fromMinor(minor) {
    const units = me.currency_minor_units;
    if (units === 0) return minor.toString();
    const digits = minor.toString().padStart(units + 1, "0");
    return digits.slice(0, -units) + "." + digits.slice(-units);
  }

  function askRefund(order) {
    // One reference for this refund, kept across a second-factor prompt: sending it
    // again can never refund twice.
    refunding = Object.assign({}, order, { reference: "R" + Date.now().toString(36).toUpperCase() });
    show("refund-code-box", false);
    $("refund-code").value = "";
    $("refund-code").required = false;
    const refunded = toMinor(order.refunded || "0");
    $("refund-order").textContent = order.merchant_reference + " · " + money(order.amount, order.currency) +
      (refunded > 0n ? " · " + t("refund.so_far") + " " + money(order.refunded, order.currency) : "");
    // What is left to refund, the most a refund may be.
    $("refund-amount").value = fromMinor(toMinor(order.amount) - refunded);
    $("refund-reason").value = "";
    $("refund-dialog").showModal();
    $("refund-amount").focus();
  }

  async function refund(event) {
    event.preventDefault();
    const order = refunding;
    const body = { amount: $("refund-amount").value.trim(), refund_reference: order.reference };
    const reason = $("refund-reason").value.trim();
    if (reason) body.reason = reason;
    const code = $("refund-code").value.trim();
    $("refund-confirm").disabled = true;
    try {
      await api("POST", "/v1/orders/" + encodeURIComponent(order.id) + "/refunds", body, null,
                code ? { "Qrgate-OTP": code } : null);
      $("refund-dialog").close();
      say(null);
      $("alert").textContent = "";
      loadToday();
    } catch (e) {
      if (e.code === "second_factor_required" || e.code === "second_factor_invalid") {
        // Large refunds need the key's second factor: ask for the code in the dialog.
        $("refund-code-why").textContent = qrgateI18n.error(e.code);
        show("refund-code-box", true);
        $("refund-code").value = "";
        $("refund-code").required = true;
        $("refund-code").focus();
        return;
      }
      $("refund-dialog").close();
      say(e);
    } finally {
      $("refund-confirm").disabled = false;
    }
  }

  // ---- shift --------------------------------------------------------------------
  const shiftKey = () => "qrgate.shift." + me.key_id;
  function showShift() {
    const since = localStorage.getItem(shiftKey());
    $("shift-state").textContent = since ? t("shift.since") + " " + when(since) : t("shift.none");
    $("shift-open").disabled = !!since;
    $("shift-close").disabled = !since;
  }
  function openShift() {
    localStorage.setItem(shiftKey(), new Date().toISOString());
    show("shift-table", false);
    showShift();
  }
  async function closeShift() {
    const since = localStorage.getItem(shiftKey());
    let report;
    try {
      report = await api("GET", "/v1/reports/shift?since=" + encodeURIComponent(since));
    } catch (e) {
      say(e);
      return;
    }
    const rows = $("shift-rows");
    rows.replaceChildren();
    const line = (name, r) => {
      const tr = document.createElement("tr");
      [name, r.orders_paid, money(r.paid_amount, report.currency), r.refunds, money(r.refunded_amount, report.currency)]
        .forEach((text, i) => {
          const td = document.createElement(i === 0 ? "th" : "td");
          td.textContent = text;
          if (i > 0) td.className = "num";
          tr.append(td);
        });
      rows.append(tr);
    };
    for (const k of report.keys) line(k.key_name || k.key_id || "—", k);
    line(t("shift.total"), report.totals);
    show("shift-table", true);
    localStorage.removeItem(shiftKey());
    showShift();
    $("shift-state").textContent = t("shift.net") + ": " + money(report.totals.net_amount, report.currency);
  }

  // ---- report -------------------------------------------------------------------
  async function showReport() {
    let report;
    try {
      report = await api("GET", "/v1/reports/settlement?date=" + encodeURIComponent($("report-date").value));
    } catch (e) {
      say(e);
      return;
    }
    const lines = [["report.opening", report.opening_balance], ["report.payments", report.payments_amount],
      ["report.discounts", report.discounts_amount], ["report.tips", report.tips_amount],
      ["report.convenience_fees", report.convenience_fees_amount], ["report.fees", report.fees],
      ["report.refunds", report.refunds_amount], ["report.payouts", report.payouts_amount],
      ["report.closing", report.closing_balance]];
    const dl = $("report");
    dl.replaceChildren();
    for (const [label, value] of lines) {
      const dt = document.createElement("dt");
      dt.textContent = t(label);
      const dd = document.createElement("dd");
      dd.textContent = money(value, report.currency);
      dl.append(dt, dd);
    }
  }

  async function statementCsv() {
    try {
      const accounts = await api("GET", "/v1/accounts");
      const account = accounts.items[0];
      const date = $("report-date").value;
      const res = await fetch("/v1/accounts/" + encodeURIComponent(account.id) + "/statement?format=csv&limit=200",
        { headers: { Authorization: "Bearer " + key() }, cache: "no-store" });
      if (!res.ok) throw (await res.json()).error;
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await res.blob());
      link.download = "statement-" + date + ".csv";
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (e) {
      say(e && e.code ? e : { code: "other" });
    }
  }

  // ---- wiring -------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    qrgateI18n.apply();
    // Words drawn by the script are drawn again in the other language.
    $("lang").addEventListener("click", () => {
      qrgateI18n.toggle();
      if (!me) return;
      if (current && !$("result-view").classList.contains("hidden")) showResult(current);
      if (!$("tab-today").classList.contains("hidden")) loadToday();
      if (!$("tab-shift").classList.contains("hidden") && $("shift-table").classList.contains("hidden")) showShift();
      if ($("report").children.length > 0) showReport();
    });
    $("signin-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const candidate = $("key").value.trim();
      $("key").value = "";
      await signIn(candidate);
    });
    $("signout").addEventListener("click", signOut);
    $("tabs").addEventListener("click", (e) => { if (e.target.dataset.tab) tab(e.target.dataset.tab); });
    $("keypad").addEventListener("click", (e) => { if (e.target.dataset.key) press(e.target.dataset.key); });
    document.addEventListener("keydown", (e) => {
      if ($("keypad-view").classList.contains("hidden") || $("tab-charge").classList.contains("hidden")) return;
      if (document.activeElement && ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName)) return;
      if (/^[0-9.]$/.test(e.key) || e.key === "Backspace") { press(e.key); e.preventDefault(); }
      else if (e.key === "Escape") press("Clear");
      else if (e.key === "Enter") { charge(amountForWire()); e.preventDefault(); }
    });
    $("clear").addEventListener("click", () => press("Clear"));
    $("charge").addEventListener("click", () => charge(amountForWire()));
    $("qr-cancel").addEventListener("click", cancelOrder);
    $("next").addEventListener("click", newSale);
    $("again").addEventListener("click", () => { const amount = current && current.amount; newSale(); charge(amount); });
    $("print").addEventListener("click", () => window.print());
    $("key-filter").addEventListener("change", loadToday);
    let searchTimer = null;
    $("order-search").addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(loadToday, 300);
    });
    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(searchTimer);
      loadToday();
    });
    $("refund-form").addEventListener("submit", refund);
    $("refund-cancel").addEventListener("click", () => $("refund-dialog").close());
    $("shift-open").addEventListener("click", openShift);
    $("shift-close").addEventListener("click", closeShift);
    $("report-show").addEventListener("click", showReport);
    $("report-csv").addEventListener("click", statementCsv);
    if (key()) signIn(key()); else $("key").focus();
  });
})();
