"""PDFs in messages: their text, read with pypdf, goes into the prompt of the text-only local model.

An Anthropic ``document`` block (base64 PDF) or an OpenAI ``file`` part (a ``data:application/pdf`` URL)
becomes the text of its pages. A file that is not a readable PDF, or one without a text layer (a scan),
gets a 400 that says so.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging

from helpers.llm_server.schemas import DocumentBlock, FilePart, RequestError

MAX_PAGES = 100  # as the Anthropic API's limit for one PDF
# pypdf logs what it repairs or cannot read; the server answers those with a 400, so the log lines are noise
logging.getLogger("pypdf").setLevel(logging.ERROR)


def pdf_text(data: str, name: str = "the PDF") -> str:
    """The text of a base64-encoded PDF's pages, one after the other."""
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(base64.b64decode(data, validate=True)))
        if len(reader.pages) > MAX_PAGES:
            raise RequestError(f"{name} has {len(reader.pages)} pages: at most {MAX_PAGES} are accepted.")
        text = "\n\n".join(page.extract_text() or "" for page in reader.pages).strip()
    except (binascii.Error, ValueError, pypdf.errors.PdfReadError) as error:
        raise RequestError(f"Could not read {name} as a PDF ({error}): send the file's bytes, base64-encoded, "
                           "with media type application/pdf.") from None
    if not text:
        raise RequestError(f"{name} has no text layer (a scanned PDF?): the local model reads text only; "
                           "run OCR first, or send the pages as images to a model that can see.")
    return text


def document_text(block: DocumentBlock | FilePart) -> str:
    """A document block or file part as the text the model reads."""
    if isinstance(block, DocumentBlock):
        title = block.title or "document"
        return f"[{title}]\n{pdf_text(block.source.data, title)}"
    head, _, data = block.file.file_data.partition(",")
    if head != "data:application/pdf;base64":
        raise RequestError("file.file_data: send a PDF as data:application/pdf;base64,... (the local server "
                           "cannot fetch uploaded file ids).", param="file")
    title = block.file.filename or "document"
    return f"[{title}]\n{pdf_text(data, title)}"
