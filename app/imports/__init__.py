"""`loupe import`: a site's labeled history, brought in as ground truth or as items to inspect.

Readers (yolo, coco, labelstudio, folders) turn an export into one `SourceImage` per image
(app.imports.records): its file, the boxes its labels draw and the image-level label. A
first pass reads the labels only (the census, app.imports.plan): every source class must
map to the taxonomy (app.imports.mapping) before anything is written. The second pass
(app.imports.service) reads each image once, checks it as an upload is checked, and
writes it (app.imports.writer):

- `--as verified`: the labels are ground truth. Each image becomes an inspection (source
  "import:<name>") with a decided review task and a decision in effect that no person
  made (decision.user_id NULL, model_verdict NULL, no error cases): the learning loop
  sees verified samples and crops; no inspector's numbers, and no agreement or confusion
  of the models, count it.
- `--as inspect`: the photos go to the models and the queue as a station's would; the
  labels are kept on the inspection (`reference_labels`) to compare the models with.

Boxes are stored as DecisionRegion stores them (see app.imports.records): (x1, y1, x2, y2)
floats in pixels of the upright photo, origin at the top-left corner, x2/y2 the right and
bottom edges. An export that writes them back the same way round-trips to the pixel.

Idempotent: an image is known by the sha256 of its bytes, as photos are stored; one
already in Loupe (from any source) is "already present" and adds nothing.
"""
