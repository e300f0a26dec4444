import json

import jsonschema
import msgspec
import pytest

from schemas import (
    SCHEMA_VERSION,
    DeadLetter,
    DimensionScore,
    PaperExtracted,
    PaperRef,
    PaperSubmitted,
    QAGenerated,
    QAPair,
    QAScored,
    Racar,
    RecordError,
    Section,
    decode,
    encode,
)
from schemas.ddl import ddl
from schemas.jsonschema import write_json_schemas

REF = PaperRef(paper_id="p1", doi="10.1/x", title="T", source_uri="file:///a.pdf")
RACAR = Racar(
    **{d: DimensionScore(3, "ok") for d in ("relevance", "agnosticism", "completeness", "accuracy", "reasonableness")}
)
RECORDS = [
    PaperSubmitted(paper_id="p1", pdf_uri="file:///a.pdf", pdf_bytes=b"%PDF-1.7 \x00\xff"),
    PaperExtracted(paper=REF, text="Intro\nbody", sections=[Section("Intro", 0, 5)], pages=2),
    QAGenerated(
        paper=REF,
        language="en",
        keywords=["k"],
        pairs=[QAPair(qa_id="q1", index=0, question="Q?", answer="A.")],
        context="body",
    ),
    QAScored(
        paper=REF,
        qa_id="q1",
        pair_index=0,
        sequence=0,
        pair_count=1,
        question="Q?",
        answer="A.",
        racar=RACAR,
        numeric_support=0.5,
        accepted=True,
    ),
    DeadLetter(stage="extractor", paper_id="p1", error_kind="not_a_pdf", message="no"),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_round_trip(record):
    assert decode(encode(record), type(record)) == record


@pytest.mark.parametrize(
    "payload, kind",
    [
        (b"", "empty_payload"),
        (b"\x00\x01garbage", "undecodable"),
        (b'{"pdf_uri": "file:///a.pdf"}', "schema_violation"),  # paper_id missing
        (b'{"paper_id": 5}', "schema_violation"),  # wrong type
        (b'{"paper_id": "p", "schema_version": 99}', "unsupported_schema_version"),
        (b"[1, 2]", "schema_violation"),
    ],
)
def test_bad_payloads_raise_record_error_with_kind(payload, kind):
    with pytest.raises(RecordError) as info:
        decode(payload, PaperSubmitted)
    assert info.value.kind == kind
    assert str(info.value)


def test_unknown_fields_are_ignored_for_forward_compatibility():
    record = decode(b'{"paper_id": "p", "added_in_v2": {"x": 1}}', PaperSubmitted)
    assert record.paper_id == "p" and record.schema_version == SCHEMA_VERSION


def test_json_schemas_validate_real_records(tmp_path):
    written = write_json_schemas(tmp_path)
    assert {p.name for p in written} >= {f"{type(r).__name__}.schema.json" for r in RECORDS} | {"topics.json"}
    for record in RECORDS:
        schema = json.loads((tmp_path / f"{type(record).__name__}.schema.json").read_text())
        jsonschema.validate(msgspec.json.decode(encode(record)), schema)
    bad = msgspec.json.decode(encode(RECORDS[3]))
    bad["racar"]["accuracy"] = {"reason": "no score"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json.loads((tmp_path / "QAScored.schema.json").read_text()))


def test_ddl_uses_replacing_merge_tree_keyed_by_ids():
    statements = "\n".join(ddl("db"))
    assert "ReplacingMergeTree(inserted_at) ORDER BY (paper_id, qa_id)" in statements
    assert "ReplacingMergeTree(updated_at) ORDER BY paper_id" in statements
