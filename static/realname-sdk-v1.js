/*
 * Realname widget, version 1: the hosted identity check in a modal on your page.
 *
 *   <script src="https://YOUR-REALNAME/sdk/v1/realname.js"></script>
 *   const result = await Realname.verify({ url: session.url, locale: "en", onEvent: (e) => console.log(e) });
 *   // result.status: "approved" | "rejected" | "review" | "failed" | "expired" | "cancelled" | "new_tab"
 *
 * Events: ready, step ({step}), completed ({status}), cancelled, error ({code}). Messages are taken only from
 * the service this file was loaded from, and only from the widget's own frame. Your server still acts on the
 * signed webhook: the browser is not the source of truth. The operator must list your page's origin for your
 * merchant account (`merchants set-frame-origins`); where the browser blocks the frame or its camera, the
 * widget offers to continue in a new tab and resolves with status "new_tab" once the customer goes there.
 * No dependencies, no network requests of its own.
 */
(function (global) {
  "use strict";
  if (global.Realname && global.Realname.version === "1") return;
  var script = document.currentScript;
  var SERVICE = script && script.src ? new URL(script.src, global.location.href).origin : null;
  var LOAD_GRACE_MS = 3000; // after the frame loaded, for its first message (a blocked frame sends none)
  var READY_TIMEOUT_MS = 30000;
  var TEXT = {
    en: {
      title: "Identity check",
      close: "Close the identity check",
      frame_blocked: "The identity check cannot open inside this page.",
      camera_denied: "The camera cannot be used inside this page.",
      new_tab: "Continue in a new tab",
    },
    "zh-CN": {
      title: "身份核验",
      close: "关闭身份核验",
      frame_blocked: "身份核验无法在此页面中打开。",
      camera_denied: "无法在此页面中使用摄像头。",
      new_tab: "在新标签页中继续",
    },
  };

  function make(tag, attributes, styles) {
    var element = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { element.setAttribute(name, attributes[name]); });
    Object.keys(styles || {}).forEach(function (name) { element.style[name] = styles[name]; });
    return element;
  }

  function verify(options) {
    options = options || {};
    return new Promise(function (resolve, reject) {
      var url;
      try {
        url = new URL(options.url, global.location.href);
      } catch (e) {
        reject(new Error("Realname.verify: `url` must be the session's link"));
        return;
      }
      if (!SERVICE || url.origin !== SERVICE) {
        reject(new Error("Realname.verify: `url` must be a link of " + SERVICE + ", where realname.js was loaded from"));
        return;
      }
      if (options.locale) url.searchParams.set("lang", options.locale);
      var text = TEXT[/^zh/i.test(options.locale || document.documentElement.lang || "") ? "zh-CN" : "en"];
      var onEvent = typeof options.onEvent === "function" ? options.onEvent : function () {};
      var phone = global.matchMedia && global.matchMedia("(max-width: 600px)").matches;
      var ready = false;
      var loads = 0;
      var steps = 0;
      var finished = false;
      var timers = [];
      var inerted = [];
      var previousFocus = document.activeElement;

      var overlay = make("div", { role: "dialog", "aria-modal": "true", "aria-label": text.title, "data-realname-widget": "1" }, {
        position: "fixed", top: "0", left: "0", right: "0", bottom: "0", zIndex: "2147483647",
        background: "rgba(27, 31, 36, 0.6)", display: "flex", alignItems: "center", justifyContent: "center",
      });
      var box = make("div", {}, {
        position: "relative", display: "flex", flexDirection: "column", background: "#f3f5f8", overflow: "hidden",
        width: phone ? "100%" : "min(480px, 100%)", height: phone ? "100%" : "min(760px, 100%)", borderRadius: phone ? "0" : "14px",
        boxShadow: "0 8px 32px rgba(0, 0, 0, 0.3)",
      });
      var bar = make("div", {}, {
        display: "flex", alignItems: "center", justifyContent: "space-between", flex: "none", padding: "4px 6px 4px 16px",
        background: "#fff", borderBottom: "1px solid #e1e5ea", font: "600 16px/1.4 system-ui, sans-serif", color: "#1b1f24",
      });
      var heading = make("span");
      heading.textContent = text.title;
      var close = make("button", { type: "button", "aria-label": text.close, "data-realname": "close" }, {
        width: "44px", height: "44px", borderRadius: "22px", border: "0", background: "transparent",
        color: "#1b1f24", font: "28px/1 system-ui, sans-serif", cursor: "pointer",
      });
      close.textContent = "\u00d7";
      bar.appendChild(heading);
      bar.appendChild(close);
      var frame = make("iframe", { src: url.href, title: text.title, allow: "camera; fullscreen" }, {
        border: "0", width: "100%", height: "100%", flex: "1", background: "#fff",
      });
      var notice = make("div", { role: "alert", "data-realname": "fallback" }, { padding: "20px", font: "16px/1.5 system-ui, sans-serif", color: "#1b1f24" });
      notice.hidden = true;
      var noticeText = make("p");
      var link = make("a", { href: url.href, target: "_blank", rel: "noopener", "data-realname": "new-tab" }, {
        display: "inline-block", padding: "12px 18px", borderRadius: "10px", background: "#1f5fbf", color: "#fff", textDecoration: "none",
      });
      link.textContent = text.new_tab;
      notice.appendChild(noticeText);
      notice.appendChild(link);
      // Focus stays in the dialog: leaving past its last or first stop comes back round.
      var first = make("span", { tabindex: "0", "data-realname": "trap" });
      var last = make("span", { tabindex: "0", "data-realname": "trap" });
      box.appendChild(first);
      box.appendChild(bar);
      box.appendChild(notice);
      box.appendChild(frame);
      box.appendChild(last);
      overlay.appendChild(box);

      function emit(event) {
        try {
          onEvent(event);
        } catch (e) { /* the merchant's handler must not break the check */ }
      }

      function focusInside(toEnd) {
        var target = notice.hidden ? frame : link;
        (toEnd ? target : close).focus();
      }

      function finish(result) {
        if (finished) return;
        finished = true;
        timers.forEach(clearTimeout);
        global.removeEventListener("message", onMessage);
        document.removeEventListener("keydown", onKey, true);
        overlay.remove();
        inerted.forEach(function (element) { element.inert = false; });
        if (previousFocus && previousFocus.focus) previousFocus.focus();
        resolve(result);
      }

      function cancel() {
        emit({ type: "cancelled" });
        finish({ status: "cancelled" });
      }

      function fallback(code) {
        if (finished || !notice.hidden) return;
        frame.remove();
        noticeText.textContent = text[code] || text.frame_blocked;
        notice.hidden = false;
        emit({ type: "error", code: code, fallback: "new_tab" });
        link.focus();
      }

      function onMessage(event) {
        if (event.origin !== SERVICE || event.source !== frame.contentWindow) return;
        var data = event.data;
        if (!data || data.source !== "realname" || typeof data.type !== "string") return;
        if (!ready) {
          ready = true;
          emit({ type: "ready" });
        }
        if (data.type === "step") {
          steps += 1;
          emit({ type: "step", step: String(data.step || "") });
        }
        else if (data.type === "completed") {
          emit({ type: "completed", status: String(data.status) });
          finish({ status: String(data.status) });
        } else if (data.type === "error") {
          if (data.code === "camera_denied") fallback("camera_denied");
          else emit({ type: "error", code: String(data.code || "") });
        } else if (data.type === "escape") cancel();
      }

      function onKey(event) {
        if (event.key === "Escape") {
          event.preventDefault();
          cancel();
        }
      }

      close.addEventListener("click", cancel);
      first.addEventListener("focus", function () { focusInside(true); });
      last.addEventListener("focus", function () { focusInside(false); });
      link.addEventListener("click", function () {
        emit({ type: "cancelled", reason: "new_tab" });
        finish({ status: "new_tab" });
      });
      // Every hosted page says its step once; a page loaded in the frame that says nothing was blocked.
      frame.addEventListener("load", function () {
        var loaded = ++loads;
        timers.push(setTimeout(function () { if (steps < loaded) fallback("frame_blocked"); }, LOAD_GRACE_MS));
      });
      timers.push(setTimeout(function () { if (!ready) fallback("frame_blocked"); }, options.timeoutMs || READY_TIMEOUT_MS));  // nothing loads at all
      global.addEventListener("message", onMessage);
      document.addEventListener("keydown", onKey, true);

      Array.prototype.forEach.call(document.body.children, function (element) {
        if (!element.inert) {
          element.inert = true; // the page behind: no focus, no clicks, hidden from screen readers
          inerted.push(element);
        }
      });
      document.body.appendChild(overlay);
      frame.focus();
    });
  }

  global.Realname = { version: "1", verify: verify };
})(window);
