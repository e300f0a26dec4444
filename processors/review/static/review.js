// sciqag review: keyboard shortcuts and the reviewer's name (kept in localStorage). No inline script anywhere:
// the Content-Security-Policy allows this file only.
"use strict";
(function () {
  const KEY = "sciqag-reviewer";
  const typing = (el) => el && el.closest && el.closest("input, textarea, select, [contenteditable]");
  const go = (id) => { const a = document.getElementById(id); if (a) { window.location.href = a.href; } };

  function pairPage() {
    const form = document.getElementById("verdict-form");
    if (!form) { return; }
    const reviewer = document.getElementById("reviewer");
    const verdict = document.getElementById("verdict-value");
    const reason = document.getElementById("reason");
    const reasonText = document.getElementById("reason-text");
    const hint = document.getElementById("hint");
    reviewer.value = window.localStorage.getItem(KEY) || "";
    reviewer.addEventListener("input", () => window.localStorage.setItem(KEY, reviewer.value.trim()));
    const say = (text) => { hint.textContent = text; };

    function submit(kind) {
      if (!reviewer.value.trim()) {
        say("type your name first (it is remembered in this browser)");
        reviewer.focus();
        return;
      }
      if (kind === "reject" && !reason.value && !reasonText.value.trim()) {
        say("choose a reason first: a number key 1-" + (reason.options.length - 1) + ", the list, or your own words");
        reason.focus();
        return;
      }
      window.localStorage.setItem(KEY, reviewer.value.trim());
      verdict.value = kind;
      form.submit();
    }
    form.querySelectorAll("button[data-verdict]").forEach((b) => b.addEventListener("click", (ev) => {
      ev.preventDefault();
      submit(b.dataset.verdict);
    }));
    document.addEventListener("keydown", (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) { return; }
      const k = ev.key;
      if (k === "a") { submit("accept"); }
      else if (k === "r") { submit("reject"); }
      else if (k === "n" || k === "j") { go("next-link"); }
      else if (k === "p" || k === "k") { go("prev-link"); }
      else if (k === "u") { go("list-link"); }
      else if (k === "e") {
        document.getElementById("edit-box").open = true;
        document.getElementById("edit-question").focus();
      } else if (/^[1-9]$/.test(k) && Number(k) < reason.options.length) {
        reason.selectedIndex = Number(k);
        say("reason: " + reason.options[reason.selectedIndex].text + " (r rejects)");
      } else { return; }
      ev.preventDefault();
    });
    const first = document.querySelector("mark.evidence-span");
    if (first && !window.location.hash) { first.scrollIntoView({ block: "center" }); window.scrollTo(0, 0); }
  }

  function listPage() {
    const rows = Array.from(document.querySelectorAll("tr.pair-row"));
    if (!rows.length) { return; }
    let at = -1;
    const select = (i) => {
      if (at >= 0) { rows[at].classList.remove("selected"); }
      at = Math.max(0, Math.min(rows.length - 1, i));
      rows[at].classList.add("selected");
      rows[at].scrollIntoView({ block: "nearest" });
    };
    document.addEventListener("keydown", (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) { return; }
      if (ev.key === "j" || ev.key === "n") { select(at + 1); }
      else if (ev.key === "k" || ev.key === "p") { select(at - 1); }
      else if ((ev.key === "Enter" || ev.key === "o") && at >= 0) { window.location.href = rows[at].dataset.href; }
      else { return; }
      ev.preventDefault();
    });
  }

  document.addEventListener("DOMContentLoaded", () => { pairPage(); listPage(); });
})();
