// Words and numbers for people, in English and Chinese, shared by both pages. The page
// follows the browser's language until the person picks one (kept in localStorage: not
// a secret).
"use strict";
const QRGATE_WORDS = {
  en: {
    "lang.other": "中文", "app.title": "qrgate till", "pay.title": "Pay",
    "signin.title": "Sign in", "signin.key": "API key", "signin.go": "Sign in", "signout": "Sign out",
    "signin.help": "Paste the API key your shop was given. It stays in this tab only.",
    "tab.charge": "Charge", "tab.today": "Today", "tab.shift": "Shift", "tab.report": "Report",
    "charge.amount": "Amount", "charge.reference": "Reference (optional)", "charge.go": "Charge",
    "charge.clear": "Clear", "charge.back": "Delete",
    "qr.scan": "Scan with your wallet app", "qr.expires": "Expires in", "qr.cancel": "Cancel",
    "qr.waiting": "Waiting for the payment…",
    "paid.title": "Paid", "paid.amount": "Amount", "paid.discount": "Discount", "paid.charged": "Charged",
    "paid.tip": "Tip", "paid.convenience_fee": "Convenience fee",
    "paid.time": "Time", "paid.payment": "Payment", "paid.print": "Print receipt", "paid.next": "New sale",
    "expired.title": "This code expired", "closed.title": "This order was cancelled", "again": "New code",
    "today.key": "Made by", "today.all": "Everyone", "today.none": "No orders today yet.",
    "today.search": "Find an order (any id, payment, refund or reference; any day)",
    "today.notfound": "No order matches.",
    "static.received": "Received {amount} at {code} (printed code)", "static.code": "Printed code",
    "today.time": "Time", "today.amount": "Amount", "today.status": "Status", "today.reference": "Reference",
    "refund.go": "Refund", "refund.amount": "Amount to refund", "refund.reason": "Reason (optional)",
    "refund.confirm": "Refund now", "refund.cancel": "Keep", "refund.done": "Refunded",
    "refund.so_far": "refunded so far",
    "refund.ask": "Refund this order? The money goes back to the customer.",
    "refund.code": "Code from your authenticator app",
    "shift.open": "Open shift", "shift.close": "Close shift", "shift.since": "Shift open since",
    "shift.none": "No shift is open on this till.", "shift.paid": "Paid", "shift.refunded": "Refunded",
    "shift.net": "Net", "shift.orders": "Orders", "shift.refunds": "Refunds", "shift.total": "Total",
    "report.date": "Date", "report.show": "Show", "report.csv": "Statement (CSV)",
    "report.opening": "Opening balance", "report.payments": "Payments", "report.fees": "Fees",
    "report.refunds": "Refunds", "report.discounts": "Discounts", "report.tips": "Tips",
    "report.convenience_fees": "Convenience fees", "report.payouts": "Payouts",
    "report.closing": "Closing balance", "report.count": "Count",
    "status.pending": "Waiting", "status.paid": "Paid", "status.expired": "Expired", "status.closed": "Cancelled",
    "status.partially_refunded": "Partly refunded", "status.refunded": "Refunded",
    "pay.to": "Pay to", "pay.items": "Items", "pay.open": "Open in wallet app", "pay.cancel": "Cancel and go back",
    "pay.done": "Paid. Taking you back to the shop…", "pay.expired": "This payment link expired.",
    "pay.cancelled": "This payment was cancelled.", "pay.notfound": "This payment link does not exist.",
    "pay.back": "Back to the shop", "pay.qty": "×",
    "err.unauthenticated": "This API key is not valid or was revoked.",
    "err.forbidden": "This key may not do that. Ask the shop owner for a key with that permission.",
    "err.not_found": "Not found.", "err.insufficient_funds": "The customer's balance is not enough.",
    "err.merchant_insufficient_funds": "The shop's balance is too low for this refund.",
    "err.refund_exceeds_payment": "That is more than is left to refund on this order.",
    "err.order_not_refundable": "This order was never paid, so it cannot be refunded.",
    "err.too_many_refunds": "This order has had as many refunds as it may.",
    "err.duplicate_reference": "That reference is already used by another order. Use another one.",
    "err.account_blocked": "This shop is blocked. Contact the payment provider.",
    "err.currency_mismatch": "The amount is in a currency this shop does not take.",
    "err.invalid_request": "Please check what you entered.",
    "err.rate_limited": "Too many requests. Wait a moment and try again.",
    "err.second_factor_required": "A refund this large needs the 6-digit code from this key's authenticator app.",
    "err.second_factor_invalid": "That code is wrong or already used. Enter the app's current code.",
    "err.unavailable": "The service is busy. Try again in a moment.",
    "err.network": "No connection to the payment service. Check the network.",
    "err.amount": "Enter an amount first.",
    "err.other": "Something went wrong. Try again; if it keeps happening, tell the shop owner.",
  },
  zh: {
    "lang.other": "English", "app.title": "qrgate 收银台", "pay.title": "付款",
    "signin.title": "登录", "signin.key": "API 密钥", "signin.go": "登录", "signout": "退出",
    "signin.help": "粘贴商户的 API 密钥。它只保存在本标签页中。",
    "tab.charge": "收款", "tab.today": "今日", "tab.shift": "交班", "tab.report": "报表",
    "charge.amount": "金额", "charge.reference": "单号（可选）", "charge.go": "收款",
    "charge.clear": "清除", "charge.back": "删除",
    "qr.scan": "请用钱包应用扫码", "qr.expires": "剩余时间", "qr.cancel": "取消",
    "qr.waiting": "等待付款…",
    "paid.title": "已付款", "paid.amount": "金额", "paid.discount": "优惠", "paid.charged": "实付",
    "paid.tip": "小费", "paid.convenience_fee": "服务费",
    "paid.time": "时间", "paid.payment": "付款编号", "paid.print": "打印小票", "paid.next": "下一笔",
    "expired.title": "二维码已过期", "closed.title": "订单已取消", "again": "重新生成",
    "today.key": "收银员", "today.all": "全部", "today.none": "今天还没有订单。",
    "today.search": "查找订单（订单号、支付号、退款号或单号；不限日期）",
    "today.notfound": "没有匹配的订单。",
    "static.received": "已收款 {amount}（{code}，收款码）", "static.code": "收款码",
    "today.time": "时间", "today.amount": "金额", "today.status": "状态", "today.reference": "单号",
    "refund.go": "退款", "refund.amount": "退款金额", "refund.reason": "原因（可选）",
    "refund.confirm": "确认退款", "refund.cancel": "不退了", "refund.done": "已退款",
    "refund.so_far": "已退",
    "refund.ask": "确定退款吗？款项将退回顾客。",
    "refund.code": "身份验证器应用中的验证码",
    "shift.open": "开班", "shift.close": "交班", "shift.since": "开班时间",
    "shift.none": "本收银台没有进行中的班次。", "shift.paid": "收款", "shift.refunded": "退款",
    "shift.net": "净额", "shift.orders": "笔数", "shift.refunds": "退款笔数", "shift.total": "合计",
    "report.date": "日期", "report.show": "查看", "report.csv": "对账单（CSV）",
    "report.opening": "期初余额", "report.payments": "收款", "report.fees": "手续费",
    "report.refunds": "退款", "report.discounts": "优惠", "report.tips": "小费",
    "report.convenience_fees": "服务费", "report.payouts": "提现",
    "report.closing": "期末余额", "report.count": "笔数",
    "status.pending": "等待付款", "status.paid": "已付款", "status.expired": "已过期", "status.closed": "已取消",
    "status.partially_refunded": "部分退款", "status.refunded": "已退款",
    "pay.to": "收款方", "pay.items": "商品", "pay.open": "在钱包应用中打开", "pay.cancel": "取消并返回",
    "pay.done": "已付款，正在返回商户…", "pay.expired": "付款链接已过期。",
    "pay.cancelled": "付款已取消。", "pay.notfound": "付款链接不存在。",
    "pay.back": "返回商户", "pay.qty": "×",
    "err.unauthenticated": "API 密钥无效或已被吊销。",
    "err.forbidden": "此密钥没有该权限，请向店主索取有权限的密钥。",
    "err.not_found": "未找到。", "err.insufficient_funds": "顾客余额不足。",
    "err.merchant_insufficient_funds": "商户余额不足，无法退款。",
    "err.refund_exceeds_payment": "超过了该订单可退的金额。",
    "err.order_not_refundable": "该订单未付款，不能退款。",
    "err.too_many_refunds": "该订单的退款次数已达上限。",
    "err.duplicate_reference": "该单号已被其他订单使用，请换一个。",
    "err.account_blocked": "商户已被冻结，请联系支付服务商。",
    "err.currency_mismatch": "该币种本店不支持。",
    "err.invalid_request": "请检查输入的内容。",
    "err.rate_limited": "请求过多，请稍后再试。",
    "err.second_factor_required": "这笔退款金额较大，需要输入此密钥的身份验证器应用中的 6 位验证码。",
    "err.second_factor_invalid": "验证码错误或已使用，请输入应用中当前的验证码。",
    "err.unavailable": "服务繁忙，请稍后再试。",
    "err.network": "无法连接支付服务，请检查网络。",
    "err.amount": "请先输入金额。",
    "err.other": "出错了，请重试；若一直出错，请告诉店主。",
  },
};

const qrgateI18n = (() => {
  const pick = () => {
    const chosen = localStorage.getItem("qrgate.lang");
    if (chosen === "en" || chosen === "zh") return chosen;
    return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
  };
  let lang = pick();
  const t = (key) => (QRGATE_WORDS[lang] && QRGATE_WORDS[lang][key]) || QRGATE_WORDS.en[key] || key;
  // Every element with data-i18n gets its words; data-i18n-label sets aria-label.
  const apply = (root = document) => {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    root.querySelectorAll("[data-i18n-label]").forEach((el) => { el.setAttribute("aria-label", t(el.dataset.i18nLabel)); });
  };
  const toggle = () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("qrgate.lang", lang); apply(); };
  // An API error in a person's words: never the raw code.
  const error = (code) => {
    const key = "err." + code;
    return QRGATE_WORDS.en[key] ? t(key) : t("err.other");
  };
  // An amount as the wire writes it ("12.50"), shown with its currency's sign.
  const money = (amount, currency) => {
    try {
      const digits = amount.includes(".") ? amount.split(".")[1].length : 0;
      return new Intl.NumberFormat(lang === "zh" ? "zh-CN" : "en", {
        style: "currency", currency, minimumFractionDigits: digits, maximumFractionDigits: digits,
      }).format(Number(amount));
    } catch (e) {
      return amount + " " + currency;
    }
  };
  // Shows m:ss left until expiresAt in element, every second; returns the timer to clear.
  const countdown = (element, expiresAt) => {
    const tick = () => {
      const left = Math.max(0, Math.round((new Date(expiresAt) - Date.now()) / 1000));
      element.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    };
    tick();
    return setInterval(tick, 1000);
  };
  return { t, apply, toggle, error, money, countdown, get lang() { return lang; } };
})();
