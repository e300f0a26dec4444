"""Topic names and the record each carries (partition key: paper_id)."""

PAPERS = "sciqag.papers"
EXTRACTED = "sciqag.extracted"
GENERATED = "sciqag.qa.generated"
SCORED = "sciqag.qa.scored"
DLQ = "sciqag.dlq"

TOPIC_RECORDS = {
    PAPERS: "PaperSubmitted",
    EXTRACTED: "PaperExtracted",
    GENERATED: "QAGenerated",
    SCORED: "QAScored",
    DLQ: "DeadLetter",
}
