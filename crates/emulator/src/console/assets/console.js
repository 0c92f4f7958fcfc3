// iotcore emulator console: live updates.
//
// An element with data-stream="URL" opens a server-sent event stream. Each
// event's name is the id of the element it updates, and carries HTML the
// server rendered. The target's data-mode says what to do with it:
// "replace" its content, or "prepend" it as a new first item, keeping at most
// data-keep items. The ".live" element inside the streaming element says
// whether the stream is connected. Without this script the pages still work;
// they are only not live.
"use strict";

document.querySelectorAll("[data-stream]").forEach(function (root) {
  var source = new EventSource(root.dataset.stream);
  var live = root.querySelector(".live");
  function say(state) {
    if (live) {
      live.textContent = state;
      live.dataset.state = state;
    }
  }
  source.onopen = function () { say("live"); };
  source.onerror = function () { say("reconnecting"); };
  root.querySelectorAll("[data-mode]").forEach(function (target) {
    source.addEventListener(target.id, function (event) {
      if (target.dataset.mode === "replace") {
        target.innerHTML = event.data;
        return;
      }
      target.insertAdjacentHTML("afterbegin", event.data);
      var keep = parseInt(target.dataset.keep || "200", 10);
      while (target.children.length > keep) {
        target.removeChild(target.lastElementChild);
      }
    });
  });
});
