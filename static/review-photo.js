// The photo on the review page: a loupe that follows the mouse, and drawing a box for a
// defect the model missed (drag with the mouse; review.js then gives it a type).
// The loupe is a copy of the photo's SVG (photo and boxes) with a smaller viewBox, so it
// magnifies the boxes too and stays sharp. Styles are set through the CSSOM, which the
// page's Content-Security-Policy allows (it forbids inline style attributes).
"use strict";

(() => {
  const ZOOM = 3;
  const LENS_PX = 240;
  const MIN_DRAG_PX = 6; // on screen: a click is not a box
  const NS = "http://www.w3.org/2000/svg";

  const lens = document.createElement("div");
  lens.className = "loupe";
  lens.hidden = true;
  document.body.append(lens); // deferred script: the body is there

  let loupeOn = true;
  let lensSource = null; // the photo SVG the lens copies
  let drawing = null; // {svg, start, group, rects}

  function frameAt(target) {
    return target instanceof Element ? target.closest("#review-item svg.photo-frame") : null;
  }

  function photoPoint(svg, event) {
    const point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    const p = point.matrixTransform(svg.getScreenCTM().inverse());
    const width = Number(svg.dataset.width);
    const height = Number(svg.dataset.height);
    return { x: Math.min(width, Math.max(0, p.x)), y: Math.min(height, Math.max(0, p.y)) };
  }

  // --- loupe ---------------------------------------------------------------------------------

  function showLens(svg, event) {
    if (!loupeOn || drawing) {
      lens.hidden = true;
      return;
    }
    if (lensSource !== svg || !lens.firstChild) {
      const copy = svg.cloneNode(true);
      copy.removeAttribute("class");
      copy.removeAttribute("role");
      copy.setAttribute("aria-hidden", "true");
      copy.setAttribute("width", String(LENS_PX));
      copy.setAttribute("height", String(LENS_PX));
      copy.setAttribute("preserveAspectRatio", "xMidYMid slice");
      lens.replaceChildren(copy);
      lensSource = svg;
    }
    const p = photoPoint(svg, event);
    const scale = svg.getScreenCTM().a; // screen pixels per photo pixel
    const span = LENS_PX / (scale * ZOOM);
    lens.firstChild.setAttribute("viewBox", `${p.x - span / 2} ${p.y - span / 2} ${span} ${span}`);
    lens.style.left = `${event.clientX - LENS_PX / 2}px`;
    lens.style.top = `${event.clientY - LENS_PX / 2}px`;
    lens.hidden = false;
  }

  function hideLens() {
    lens.hidden = true;
  }

  document.addEventListener("review:toggle-loupe", () => {
    loupeOn = !loupeOn;
    if (!loupeOn) hideLens();
  });
  // Boxes changed or a new item arrived: the next move copies the photo again.
  document.addEventListener("review:boxes-changed", () => { lensSource = null; });
  document.addEventListener("htmx:afterSwap", () => { lensSource = null; hideLens(); });

  // --- drawing -------------------------------------------------------------------------------

  function boxGroup(svg) {
    const group = document.createElementNS(NS, "g");
    group.setAttribute("class", "box added untyped c12");
    const rects = ["halo", "line"].map((name) => {
      const rect = document.createElementNS(NS, "rect");
      rect.setAttribute("class", name);
      rect.setAttribute("vector-effect", "non-scaling-stroke");
      group.append(rect);
      return rect;
    });
    const boxes = svg.querySelector("g.boxes");
    const label = document.createElementNS(NS, "text");
    const size = Number(boxes.dataset.fontSize || 12);
    label.setAttribute("font-size", String(size));
    label.setAttribute("dy", String(size));
    label.setAttribute("dx", String(Math.floor(size / 4)));
    group.append(label);
    boxes.append(group);
    return { group, rects, label };
  }

  function place(d, a, b) {
    const x = Math.min(a.x, b.x);
    const y = Math.min(a.y, b.y);
    const w = Math.abs(a.x - b.x);
    const h = Math.abs(a.y - b.y);
    for (const rect of d.rects) {
      rect.setAttribute("x", String(x));
      rect.setAttribute("y", String(y));
      rect.setAttribute("width", String(w));
      rect.setAttribute("height", String(h));
    }
    d.label.setAttribute("x", String(x));
    d.label.setAttribute("y", String(y));
    return [x, y, x + w, y + h].map((v) => Math.round(v * 10) / 10);
  }

  document.addEventListener("mousedown", (event) => {
    const svg = frameAt(event.target);
    if (!svg || event.button !== 0) return;
    const clicked = event.target.closest("g.box");
    if (clicked) {
      document.dispatchEvent(new CustomEvent("review:region-clicked", { detail: { group: clicked } }));
      return;
    }
    event.preventDefault(); // no image drag, no text selection
    drawing = { svg, start: photoPoint(svg, event), screen: [event.clientX, event.clientY] };
    hideLens();
  });

  document.addEventListener("mousemove", (event) => {
    if (drawing) {
      const moved = Math.hypot(event.clientX - drawing.screen[0], event.clientY - drawing.screen[1]);
      if (!drawing.group && moved >= MIN_DRAG_PX) Object.assign(drawing, boxGroup(drawing.svg));
      if (drawing.group) drawing.coords = place(drawing, drawing.start, photoPoint(drawing.svg, event));
      return;
    }
    const svg = frameAt(event.target);
    if (svg) showLens(svg, event);
    else hideLens();
  });

  document.addEventListener("mouseup", () => {
    const done = drawing;
    drawing = null;
    if (!done || !done.group) return;
    const [x1, y1, x2, y2] = done.coords;
    if (x2 - x1 < 2 || y2 - y1 < 2) {
      done.group.remove();
      return;
    }
    document.dispatchEvent(new CustomEvent("review:box-drawn", {
      detail: { svg: done.svg, coords: done.coords, group: done.group },
    }));
  });

  document.addEventListener("review:cancel-drawing", () => {
    if (drawing && drawing.group) drawing.group.remove();
    drawing = null;
  });
})();
