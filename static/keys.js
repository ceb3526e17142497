// The key settings page: click a field, press the key you want. The field keeps the
// physical key (event.code, e.g. "KeyQ"); the label next to it says what that key is
// called on the chosen keyboard layout ("A" on AZERTY).
"use strict";

(() => {
  const form = document.getElementById("keys-form");
  if (!form) return;
  const labels = JSON.parse(form.dataset.labels || "{}");
  const layout = form.querySelector('select[name="layout"]');
  const MODIFIERS = new Set(["Shift", "Control", "Alt", "Meta", "AltGraph", "CapsLock"]);

  function labelFor(code) {
    if (!code) return "";
    const shifted = code.startsWith("Shift+");
    const base = shifted ? code.slice(6) : code;
    const names = labels[layout.value] || {};
    const name = names[base] || base.replace(/^Key/, "").replace(/^Digit/, "");
    return (shifted ? "⇧" : "") + name;
  }

  function show(input) {
    input.parentElement.querySelector(".key-label").textContent = labelFor(input.value);
  }

  for (const input of form.querySelectorAll(".key-input")) {
    input.addEventListener("focus", () => { input.placeholder = form.dataset.press; });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Tab" || MODIFIERS.has(event.key)) return;
      event.preventDefault();
      if (event.key === "Escape") {
        input.blur();
        return;
      }
      const shifted = event.shiftKey && !event.code.startsWith("Shift");
      input.value = (shifted ? "Shift+" : "") + event.code;
      show(input);
    });
  }
  for (const button of form.querySelectorAll(".key-clear")) {
    button.addEventListener("click", () => {
      const input = button.closest("tr").querySelector(".key-input");
      input.value = "";
      show(input);
    });
  }
  layout.addEventListener("change", () => form.querySelectorAll(".key-input").forEach(show));
})();
