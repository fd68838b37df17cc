// In the merchant's widget (realname.js): tells the framing page which step the customer is at and how the
// check ended. Posted only when framed, and only to the origins the merchant listed (the browser drops a
// message whose target origin is not the parent's), so no other page ever hears of the session.
(function () {
  "use strict";
  if (window.parent === window) return;
  var origins = (document.body.dataset.embedOrigins || "").split(" ").filter(Boolean);
  var FINAL = ["approved", "rejected", "review", "failed", "expired"];

  function post(message) {
    message.source = "realname";
    origins.forEach(function (origin) {
      try {
        window.parent.postMessage(message, origin);
      } catch (e) { /* an origin the browser cannot parse: nobody to tell */ }
    });
  }

  post({ type: "ready" });
  post({ type: "step", step: document.body.dataset.embedStep || "" });
  var result = document.getElementById("result");
  var status = result && result.getAttribute("data-status");
  if (status && FINAL.indexOf(status) >= 0) post({ type: "completed", status: status });

  // Escape closes the widget from inside the frame too (the framing page never sees keys pressed in here).
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") post({ type: "escape" });
  });

  // The live page marks a camera it could not open (live.js): in a frame that is often the frame's doing.
  // The desktop's handoff page marks the end of the check the phone did (handoff.js).
  var completed = false;
  new MutationObserver(function () {
    var data = document.body.dataset;
    if (data.liveError) post({ type: "error", code: data.liveError });
    if (!completed && data.handoffState === "done" && FINAL.indexOf(data.handoffStatus) >= 0) {
      completed = true;
      post({ type: "completed", status: data.handoffStatus });
    }
  }).observe(document.body, { attributes: true, attributeFilter: ["data-live-error", "data-handoff-state", "data-handoff-status"] });
})();
