"""Exports of what inspectors verified: COCO, YOLO, Label Studio and instruction JSONL.

`loupe export` writes one into a directory; /ml/exports builds one in the background
(a Celery task) as a .zip in the object store and hands it out as a download.
"""
