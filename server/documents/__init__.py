"""Reading identity documents: what an ID photo says (name, number, dates) and whether its own checks hold.

Pure logic (`mrz`, `resident_card`, `reading`) turns OCR lines into a `DocumentReading`; `ocr` runs the
text detector and recogniser; `reader` does that for an uploaded photo off the event loop.
"""
