// One key per decision on the review page: P passes, R rejects (the keys on the buttons).
// event.code names the physical key, so the shortcuts work with a Korean keyboard layout
// too, where the same keys type ㅔ and ㄱ.
"use strict";

document.addEventListener("keydown", (event) => {
  if (event.repeat || event.isComposing || event.ctrlKey || event.metaKey || event.altKey) {
    return;
  }
  // Typing a note must never decide the item.
  if (event.target instanceof Element &&
      event.target.closest("input, textarea, select, [contenteditable]")) {
    return;
  }
  const button = document.querySelector(`#review-item button[data-key="${event.code}"]`);
  if (!button || button.matches(":disabled")) {
    return;
  }
  event.preventDefault();
  // A click submits the form with this button as the submitter, so htmx sends its verdict.
  button.click();
});
