"""Topic names and the record each carries (partition key: paper_id)."""

PAPERS = "sciqag.papers"
EXTRACTED = "sciqag.extracted"
GENERATED = "sciqag.qa.generated"
SCORED = "sciqag.qa.scored"
DLQ = "sciqag.dlq"
# `sciqag rejudge`: stored papers' generated records again, for a re-judging judge only (never the live judge's input)
REJUDGE = "sciqag.qa.rejudge"

TOPIC_RECORDS = {
    PAPERS: "PaperSubmitted",
    EXTRACTED: "PaperExtracted",
    GENERATED: "QAGenerated",
    SCORED: "QAScored",
    DLQ: "DeadLetter",
    REJUDGE: "QAGenerated",
}
