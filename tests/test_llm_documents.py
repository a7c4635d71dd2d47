"""PDFs sent to the local endpoint (Anthropic ``document`` blocks, OpenAI ``file`` parts) through the SDKs."""

import base64
import io

import anthropic
import matplotlib
import numpy as np
import openai
import pytest
from conftest import GREEDY

from helpers import llm

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def pdf_bytes(*lines: str, image_only: bool = False) -> bytes:
    """A one-page PDF with ``lines`` as text (or drawn only as pixels, as a scan is)."""
    figure = plt.figure(figsize=(4, 3))
    if image_only:
        figure.figimage(np.eye(64), resize=True)
    for row, line in enumerate(lines):
        figure.text(0.1, 0.8 - 0.15 * row, line)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="pdf")
    plt.close(figure)
    return buffer.getvalue()


INVOICE = base64.b64encode(pdf_bytes("INVOICE 2026-117", "Customer: Ada Lovelace", "Total due: 84.50 EUR")).decode()
QUESTION = "What is the total due on this invoice? Answer with the amount."


def document(data: str) -> dict:
    return {"type": "document", "title": "invoice.pdf",
            "source": {"type": "base64", "media_type": "application/pdf", "data": data}}


def test_claude_reads_a_pdf_document(claude):
    reply = claude.messages.create(model=llm.default_model(claude), max_tokens=30, extra_body=GREEDY, messages=[
        {"role": "user", "content": [document(INVOICE), {"type": "text", "text": QUESTION}]}])
    assert "84.50" in llm.reply_text(reply)
    counted = claude.messages.count_tokens(model=llm.default_model(claude), messages=[
        {"role": "user", "content": [document(INVOICE), {"type": "text", "text": QUESTION}]}])
    assert counted.input_tokens == reply.usage.input_tokens > 30  # the PDF's text is in the prompt


def test_openai_reads_a_pdf_file_part(gpt):
    reply = gpt.chat.completions.create(model=llm.default_model(gpt), max_completion_tokens=30, **GREEDY, messages=[
        {"role": "user", "content": [
            {"type": "file", "file": {"filename": "invoice.pdf", "file_data": f"data:application/pdf;base64,{INVOICE}"}},
            {"type": "text", "text": QUESTION}]}])
    assert "84.50" in reply.choices[0].message.content


@pytest.mark.parametrize("data, message", [
    (base64.b64encode(b"%PDF-1.7 this is not really a PDF").decode(), "Could not read invoice.pdf as a PDF"),
    ("not base64!", "Could not read invoice.pdf as a PDF"),
    (base64.b64encode(pdf_bytes(image_only=True)).decode(), "no text layer"),
])
def test_a_bad_pdf_is_a_clear_400(claude, data, message):
    with pytest.raises(anthropic.BadRequestError, match=message):
        claude.messages.create(model=llm.default_model(claude), max_tokens=10, messages=[
            {"role": "user", "content": [document(data), {"type": "text", "text": QUESTION}]}])


def test_a_file_id_cannot_be_fetched(gpt):
    with pytest.raises(openai.BadRequestError, match="file_data"):
        gpt.chat.completions.create(model=llm.default_model(gpt), max_completion_tokens=5, messages=[
            {"role": "user", "content": [{"type": "file", "file": {"file_data": "file-abc123"}}]}])
