// The review page, keyboard first. Each key is an action (confirm, pass, reject, select a
// region and change its type or severity, not a defect, tags, note, undo); the server sends
// this inspector's keys in #review-config, and every button shows its key.
// Keys are physical positions (event.code), so they work with a Korean IME switched on
// and on AZERTY keyboards; users move them on /review/keys. The undo countdown and the
// lease heartbeat are in review-lease.js.
"use strict";

(() => {
  const config = document.getElementById("review-config");
  if (!config) return;
  const keymap = JSON.parse(config.dataset.keymap || "{}");
  const messages = JSON.parse(config.dataset.messages || "{}");
  // "type/severity" -> pass | reject, from the site's decision table (the server's own).
  const verdicts = JSON.parse(config.dataset.verdicts || "{}");
  // Holding a key down must never decide several items; moving through regions may repeat.
  const REPEATABLE = new Set(["next_region", "prev_region"]);
  const prefetched = [];
  let item = null; // {root, regions, selected}
  let shown = null; // the #review-item element init() last set up

  // --- the item on screen ------------------------------------------------------------------

  // Called when an item arrives, and before any key is handled: htmx announces new content
  // only after its settle delay, and a fast key must not act on the item that just left.
  function init() {
    const root = document.getElementById("review-item");
    if (root === shown) return;
    shown = root;
    if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
    if (!root || !root.classList.contains("review-item")) {
      item = null;
      return;
    }
    const regions = [...root.querySelectorAll("li.region")].map((li) => ({
      kind: "model",
      id: Number(li.dataset.region),
      li,
      box: root.querySelector(`g.box[data-region="${li.dataset.region}"]`),
      modelType: li.dataset.type,
      modelSeverity: li.dataset.severity,
      type: li.dataset.type,
      severity: li.dataset.severity,
      counted: li.hasAttribute("data-counted"),
      notDefect: false,
    }));
    // rejectAsked: a reject that marks no defect was questioned once; a second one stands.
    item = { root, regions, selected: -1, rejectAsked: false };
    if (regions.length === 1) select(0);
    prefetch(root);
    sync();
  }

  function prefetch(root) {
    const holder = root.querySelector(".prefetch");
    if (!holder) return;
    // The next item's photos, into the browser cache while this one is being looked at.
    for (const url of (holder.dataset.photos || "").split(" ").filter(Boolean)) {
      const image = new Image();
      image.decoding = "async";
      image.src = url;
      prefetched.push(image);
    }
    prefetched.splice(0, Math.max(0, prefetched.length - 16));
  }

  function hint(text, warning = false) {
    const el = item && item.root.querySelector(".hint");
    if (el) {
      el.textContent = text || "";
      el.classList.toggle("hint-warning", warning);
    }
    // The hint takes room from the region list: keep the selected region in sight.
    if (item && item.selected >= 0) item.regions[item.selected].li.scrollIntoView({ block: "nearest" });
  }

  function nameOf(action) {
    const button = document.querySelector(`[data-action="${CSS.escape(action)}"]`);
    return button ? button.dataset.name || "" : "";
  }

  function colourOf(type) {
    const button = document.querySelector(`[data-action="type.${CSS.escape(type)}"]`);
    return button ? button.dataset.colour : "12";
  }

  function setColour(el, colour) {
    if (!el) return;
    for (const cls of [...el.classList]) if (/^c\d+$/.test(cls)) el.classList.remove(cls);
    el.classList.add(`c${colour}`);
  }

  // Show a region as it now stands, and keep the form's hidden field up to date.
  function render(region) {
    const { li, box } = region;
    li.querySelector(".region-type").textContent = region.type
      ? nameOf(`type.${region.type}`) || region.type
      : messages.untyped;
    li.querySelector(".region-severity").textContent = nameOf(`severity.${region.severity}`);
    const changed =
      region.kind === "model" &&
      !region.notDefect &&
      (region.type !== region.modelType || region.severity !== region.modelSeverity);
    const state = region.kind === "added" ? messages.added
      : region.notDefect ? messages.not_defect : changed ? messages.changed : "";
    li.querySelector(".region-state").textContent = state;
    for (const el of [li, box]) {
      if (!el) continue;
      el.classList.toggle("changed", changed);
      el.classList.toggle("not-defect", region.notDefect);
      el.classList.toggle("untyped", region.kind === "added" && !region.type);
      setColour(el, region.type ? colourOf(region.type) : 12);
    }
    sync();
  }

  function edits() {
    const out = [];
    for (const r of item.regions) {
      if (r.kind === "added") {
        out.push({ photo: r.photoId, box: r.coords, type: r.type, severity: r.severity });
      } else if (r.notDefect) {
        out.push({ region: r.id, not_defect: true });
      } else if (r.type !== r.modelType || r.severity !== r.modelSeverity) {
        out.push({ region: r.id, type: r.type, severity: r.severity });
      }
    }
    return out;
  }

  function sync() {
    const changes = edits();
    const field = item.root.querySelector('input[name="regions"]');
    if (field) field.value = JSON.stringify(changes);
    showConfirm(changes.length > 0);
    document.dispatchEvent(new CustomEvent("review:boxes-changed"));
  }

  // --- what the confirm key will store ---------------------------------------------------------

  function verdictOf(type, severity) {
    return verdicts[`${type}/${severity || ""}`] || "reject"; // unknown reads as the worst
  }

  function isChanged(r) {
    return r.type !== r.modelType || r.severity !== r.modelSeverity;
  }

  // The item as it now stands (app.review.proposal.corrected_verdict): a region changed or
  // drawn counts as the inspector said, "not a defect" does not count, the rest as the
  // models read them.
  function correctedVerdict() {
    const rejects = item.regions.some((r) => {
      if (r.notDefect || !r.type) return false;
      if (r.kind === "model" && !isChanged(r) && !r.counted) return false;
      return verdictOf(r.type, r.severity) === "reject";
    });
    return rejects ? "reject" : "pass";
  }

  // Once something was edited the key no longer means "the model is right": it stores the
  // corrections, and its button says with which verdict. The server refuses a decision
  // whose verdict is not the one shown here.
  function showConfirm(edited) {
    const button = item.root.querySelector('button[data-action="confirm"]');
    if (!button) return;
    const verdict = edited ? correctedVerdict() : button.dataset.model;
    button.querySelector(".confirm-text").textContent =
      messages[`${edited ? "corrected" : "confirm"}_${verdict}`];
    button.classList.toggle("confirms-pass", verdict === "pass");
    button.classList.toggle("confirms-reject", verdict === "reject");
    button.classList.toggle("corrected", edited);
    const expects = item.root.querySelector('input[name="expects"]');
    if (expects) expects.value = verdict;
  }

  // A reject should say which region or box is the defect, or the detector learns nothing
  // from it. The first such reject is questioned; pressed again, it stands as it is.
  function marksDefect() {
    return item.regions.some((r) => !r.notDefect && r.type && nameOf(`type.${r.type}`));
  }

  function rejectMayGo() {
    const field = item.root.querySelector('input[name="unmarked"]');
    if (marksDefect()) {
      if (field) field.value = "";
      return true;
    }
    if (item.rejectAsked) {
      if (field) field.value = "true";
      return true;
    }
    item.rejectAsked = true;
    if (item.regions.length && item.selected < 0) select(0);
    hint(messages.reject_unmarked, true);
    return false;
  }

  function select(index) {
    if (!item || !item.regions.length) return;
    const n = item.regions.length;
    item.selected = ((index % n) + n) % n;
    item.regions.forEach((r, i) => {
      const on = i === item.selected;
      r.li.classList.toggle("selected", on);
      if (r.box) r.box.classList.toggle("selected", on);
    });
    item.regions[item.selected].li.scrollIntoView({ block: "nearest" });
    hint("");
  }

  // The region a type or severity key applies to: the selected one, or the only one.
  function target() {
    if (!item) return null;
    if (item.selected >= 0) return item.regions[item.selected];
    if (item.regions.length === 1) return item.regions[0];
    hint(messages.select_region);
    return null;
  }

  function setType(type) {
    const region = target();
    if (!region) return;
    region.type = type;
    region.notDefect = false;
    render(region);
    hint(region.kind === "added" ? messages.typed : "");
  }

  function setSeverity(severity) {
    const region = target();
    if (!region) return;
    region.severity = severity;
    region.notDefect = false;
    render(region);
  }

  function toggleNotDefect() {
    const region = target();
    if (!region) return;
    if (region.kind === "added") {
      removeAdded(region);
      return;
    }
    region.notDefect = !region.notDefect;
    render(region);
  }

  function removeAdded(region) {
    region.li.remove();
    if (region.box) region.box.remove();
    item.regions.splice(item.regions.indexOf(region), 1);
    item.selected = -1;
    renumber();
    if (item.regions.length) select(item.regions.length - 1);
    sync();
  }

  function renumber() {
    item.regions.forEach((r, i) => {
      r.li.querySelector(".region-number").textContent = String(i + 1);
      const label = r.box && r.box.querySelector("text");
      if (label) label.textContent = String(i + 1);
    });
  }

  // A box drawn with the mouse (review-photo.js): a new region without a type yet.
  function addDrawn({ svg, coords, group }) {
    if (!item) return;
    const list = item.root.querySelector("ol.regions");
    const li = document.createElement("li");
    li.className = "region added c12";
    li.innerHTML =
      '<div class="region-head"><span class="region-number"></span>' +
      '<span class="region-type"></span><span class="region-severity"></span>' +
      '<span class="region-state"></span></div>';
    list.append(li);
    const noRegions = item.root.querySelector(".no-regions");
    if (noRegions) noRegions.remove();
    const severity = defaultSeverity();
    const region = {
      kind: "added", li, box: group, photoId: Number(svg.dataset.photoId), coords,
      type: null, severity, notDefect: false,
    };
    item.regions.push(region);
    renumber();
    render(region);
    select(item.regions.length - 1);
    hint(messages.needs_type);
  }

  function defaultSeverity() {
    const buttons = [...document.querySelectorAll('[data-action^="severity."]')];
    const middle = buttons[Math.floor((buttons.length - 1) / 2)];
    return middle ? middle.dataset.action.slice("severity.".length) : "moderate";
  }

  // --- actions -------------------------------------------------------------------------------

  function click(action) {
    const root = document.getElementById("review-item");
    const button = root && root.querySelector(`[data-action="${action}"]`);
    if (!button || button.matches(":disabled")) return;
    // htmx wires new content up after its settle delay; a key pressed sooner would post
    // the form the old way (a full page load). process() is a no-op once it is wired.
    htmx.process(root);
    button.click();
  }

  function run(action) {
    init();
    if (action === "undo") return click("undo");
    if (!item) return;
    if (["confirm", "pass", "reject"].includes(action)) return click(action);
    if (action === "next_region") return select(item.selected + 1);
    if (action === "prev_region") return select(item.selected < 0 ? -1 : item.selected - 1);
    if (action === "not_defect") return toggleNotDefect();
    if (action === "loupe") return document.dispatchEvent(new CustomEvent("review:toggle-loupe"));
    if (action === "note") return item.root.querySelector('textarea[name="note"]').focus();
    if (action.startsWith("type.")) return setType(action.slice(5));
    if (action.startsWith("severity.")) return setSeverity(action.slice(9));
    if (action.startsWith("tag.")) {
      const box = item.root.querySelector(`input[name="tags"][value="${CSS.escape(action.slice(4))}"]`);
      if (box) box.checked = !box.checked;
    }
  }

  document.addEventListener("keydown", (event) => {
    if (event.isComposing || event.ctrlKey || event.metaKey || event.altKey) return;
    const field = event.target instanceof Element &&
      event.target.closest("input:not([type=checkbox]), textarea, select, [contenteditable]");
    if (field) {
      // Typing a note must never decide the item; Escape goes back to the keys.
      if (event.key === "Escape") {
        field.blur();
        event.preventDefault();
      }
      return;
    }
    if (event.key === "Escape") {
      document.dispatchEvent(new CustomEvent("review:cancel-drawing"));
      return;
    }
    const shifted = event.shiftKey && !event.code.startsWith("Shift");
    const action = keymap[(shifted ? "Shift+" : "") + event.code];
    if (!action) return;
    event.preventDefault();
    if (event.repeat && !REPEATABLE.has(action)) return;
    run(action);
  });

  // Buttons and regions work with the mouse too.
  document.addEventListener("click", (event) => {
    init();
    if (!(event.target instanceof Element) || !item) return;
    // A key "clicks" the same button, so this is the one place a reject is questioned.
    if (event.target.closest('form.decision button[data-action="reject"]') && !rejectMayGo()) {
      event.preventDefault();
      return;
    }
    const tool = event.target.closest(".tools [data-action], .region-nav [data-action]");
    if (tool) return run(tool.dataset.action);
    const picked = event.target.closest("li.region");
    if (picked) select(item.regions.findIndex((r) => r.li === picked));
  });
  document.addEventListener("review:region-clicked", (event) => {
    init();
    if (item) select(item.regions.findIndex((r) => r.box === event.detail.group));
  });
  document.addEventListener("review:box-drawn", (event) => {
    init();
    addDrawn(event.detail);
  });

  // A drawn box without a type cannot be saved: say so instead of sending it.
  document.body.addEventListener("htmx:confirm", (event) => {
    if (!item || !(event.target instanceof Element) || !event.target.matches("form.decision")) return;
    const untyped = item.regions.findIndex((r) => r.kind === "added" && !r.type);
    if (untyped >= 0) {
      event.preventDefault();
      select(untyped);
      hint(messages.needs_type);
    }
  });

  htmx.onLoad((element) => {
    if (element === document.body || element.id === "review-item") init();
  });
})();
