import json

import pytest

from sciqag.errors import ModelOutputError
from sciqag.parsing import parse_generation, parse_racar


def test_structured_json_output():
    text = json.dumps(
        {
            "keywords": ["PFBVE", "WVTR"],
            "qa_pairs": [
                {"question": "What WVTR did the PFBVE film have?", "answer": "0.8 g m-2 day-1."},
                {"question": "  Extra   spaces? ", "answer": "Collapsed."},
            ],
        }
    )
    parsed = parse_generation(text)
    assert parsed.keywords == ["PFBVE", "WVTR"]
    assert parsed.pairs == [("What WVTR did the PFBVE film have?", "0.8 g m-2 day-1."), ("Extra spaces?", "Collapsed.")]


def test_plain_text_format_of_the_sciqag_paper():
    text = """Keywords: hard carbon, sodium-ion, SEI
Q1: What first-cycle efficiency did hard carbon reach with both additives?
A1: 86%, up from 78%
without additives.
Q2: Which cathode was used in full cells?
A2: Na3V2(PO4)3.
Q3: A question without an answer?"""
    parsed = parse_generation(text)
    assert parsed.keywords == ["hard carbon", "sodium-ion", "SEI"]
    assert parsed.pairs[0] == (
        "What first-cycle efficiency did hard carbon reach with both additives?",
        "86%, up from 78% without additives.",
    )
    assert len(parsed.pairs) == 2  # Q3 has no answer


@pytest.mark.parametrize(
    "text",
    [
        "",
        "I cannot help with that.",
        '{"keywords": ["a"]}',
        '{"qa_pairs": "nope"}',
        '{"qa_pairs": [{"question": "", "answer": ""}]}',
        '{"qa_pairs": [{"question": "Q", ',
    ],
)
def test_malformed_generation_output_raises(text):
    with pytest.raises(ModelOutputError):
        parse_generation(text)


def _racar(**overrides):
    obj = {
        d: {"score": 3, "reason": "fine"}
        for d in ("relevance", "agnosticism", "completeness", "accuracy", "reasonableness")
    }
    obj.update(overrides)
    return json.dumps(obj)


def test_racar_scores_and_reasons():
    racar = parse_racar(_racar(accuracy={"score": 2, "reason": "one claim unsupported"}))
    assert racar.accuracy.score == 2 and racar.accuracy.reason == "one claim unsupported"
    assert racar.relevance.score == 3


@pytest.mark.parametrize(
    "text, kind",
    [
        (_racar(accuracy={"score": 4, "reason": "x"}), "judge_score_out_of_range"),
        (_racar(accuracy={"score": 0, "reason": "x"}), "judge_score_out_of_range"),
        (_racar(accuracy={"score": "high", "reason": "x"}), "judge_score_invalid"),
        (_racar(accuracy={"score": True, "reason": "x"}), "judge_score_invalid"),
        (json.dumps({"relevance": {"score": 3}}), "judge_score_invalid"),
        ("Every score is 3.", "unparseable_model_output"),
    ],
)
def test_bad_judge_output_raises_with_kind(text, kind):
    with pytest.raises(ModelOutputError) as info:
        parse_racar(text)
    assert info.value.kind == kind


# -- evidence quotes (issue 18) -----------------------------------------------------------------------------------


def test_generation_json_carries_each_pairs_evidence_quotes():
    text = json.dumps(
        {
            "keywords": ["WVTR"],
            "qa_pairs": [
                {
                    "question": "What WVTR did the PFBVE film have?",
                    "answer": "0.8 g m-2 day-1.",
                    "evidence": [
                        "a WVTR of  0.8 g m-2 day-1",
                        "a WVTR of 0.8 g m-2 day-1",
                        "",
                        "second",
                        "third",
                        "fourth",
                    ],
                },
                {"question": "", "answer": "dropped, and its quotes with it", "evidence": ["lost"]},
                {"question": "Which film?", "answer": "PFBVE.", "evidence": "one quote as a string"},
                {"question": "No quotes?", "answer": "None given."},
            ],
        }
    )
    parsed = parse_generation(text)
    assert [q for q, _ in parsed.pairs] == ["What WVTR did the PFBVE film have?", "Which film?", "No quotes?"]
    assert parsed.evidence == [["a WVTR of 0.8 g m-2 day-1", "second", "third"], ["one quote as a string"], []]


def test_plain_text_format_has_no_quotes():
    parsed = parse_generation("Keywords: a\nQ1: What is it?\nA1: A thing.\nQ2: And this?\nA2: Another.")
    assert parsed.evidence == [[], []]


def test_generated_pairs_built_without_evidence_get_empty_quote_lists():
    from sciqag.parsing import GeneratedPairs

    assert GeneratedPairs(["k"], [("q", "a")]).evidence == [[]]
    with pytest.raises(ValueError):
        GeneratedPairs(["k"], [("q", "a")], [["x"], ["y"]])


def test_mcq_items_carry_the_quotes_for_the_correct_option():
    from sciqag.parsing import parse_mcq

    items = parse_mcq(
        json.dumps(
            {
                "items": [
                    {
                        "question": "Which additive raised the efficiency most?",
                        "options": ["VC", "NaDFP", "both", "none"],
                        "correct": 3,
                        "evidence": ["with both additives the efficiency rose to 86%"],
                    },
                    {
                        "question": "Which cathode was used in full cells?",
                        "options": ["NVP", "LFP", "NMC", "LCO"],
                        "correct": 1,
                    },
                ]
            }
        )
    )
    assert items[0].evidence == ["with both additives the efficiency rose to 86%"] and items[1].evidence == []


def test_schemas_require_one_to_three_quotes():
    import jsonschema

    from sciqag.prompts import generation_schema, mcq_schema

    pair = {"question": "What WVTR did the PFBVE film have?", "answer": "0.8 g m-2 day-1."}
    schema = generation_schema(1, 1)
    good = {"keywords": ["WVTR"], "qa_pairs": [{**pair, "evidence": ["a WVTR of 0.8 g m-2 day-1"]}]}
    jsonschema.validate(good, schema)
    for evidence in ([], ["x" * 20] * 4, ["short"]):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**good, "qa_pairs": [{**pair, "evidence": evidence}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "qa_pairs": [pair]}, schema)
    item = {"question": "Which additive raised the efficiency most?", "options": ["a", "b", "c", "d"], "correct": 1}
    jsonschema.validate({"items": [{**item, "evidence": ["with both additives"]}]}, mcq_schema(1))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"items": [item]}, mcq_schema(1))


def test_a_judge_reason_that_is_only_a_fragment_is_refused():
    import json

    from sciqag.errors import ModelOutputError
    from sciqag.parsing import parse_racar

    dims = ("relevance", "agnosticism", "completeness", "accuracy", "reasonableness")
    good = {d: {"score": 2, "reason": "partly supported"} for d in dims}
    assert parse_racar(json.dumps(good)).accuracy.reason == "partly supported"
    for reason in ("1,", "   ", "1,   "):  # what the 135M model wrote under the evidence prompt (schema minLength 3)
        bad = dict(good, accuracy={"score": 1, "reason": reason})
        with pytest.raises(ModelOutputError) as err:
            parse_racar(json.dumps(bad))
        assert err.value.kind == "judge_reason_missing"
