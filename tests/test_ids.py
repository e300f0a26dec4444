from sciqag.ids import normalize_doi, paper_id_for, qa_id_for


def test_doi_forms_normalise_to_one_id():
    forms = ["10.1039/D1SC05088E", "https://doi.org/10.1039/d1sc05088e", "doi:10.1039/D1SC05088E."]
    assert {normalize_doi(f) for f in forms} == {"10.1039/d1sc05088e"}
    assert len({paper_id_for(doi=f) for f in forms}) == 1


def test_paper_id_prefers_doi_then_content_then_uri():
    assert paper_id_for(doi="10.1234/a", content=b"x") == paper_id_for(doi="10.1234/a", content=b"y")
    assert paper_id_for(content=b"x") != paper_id_for(content=b"y")
    assert paper_id_for(content=b"x", uri="file:///a") == paper_id_for(content=b"x", uri="file:///b")
    assert paper_id_for(uri="file:///a") != paper_id_for(uri="file:///b")


def test_qa_id_depends_on_paper_index_prompt_and_kind():
    base = qa_id_for("p", 0, "v1")
    assert base == qa_id_for("p", 0, "v1")
    assert (
        len(
            {
                base,
                qa_id_for("p", 1, "v1"),
                qa_id_for("p", 0, "v2"),
                qa_id_for("q", 0, "v1"),
                qa_id_for("p", 0, "v1", kind="mcq"),
            }
        )
        == 5
    )
