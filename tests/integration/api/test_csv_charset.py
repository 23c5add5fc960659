"""A CSV body in another character set than UTF-8, named by its Content-Type's charset
(a head-end on Windows posting its export as written). Expected texts are the body's
own, decoded by Python's codec."""

from __future__ import annotations

from support.api import Api, seed_reference

HEADER = "meter_id;ts;interval_s;import_kwh;Bemerkung (Zähler)"
ROWS = ["M-C1;2025-03-07T00:00:00Z;900;0.1;Gerät A", "M-C1;2025-03-07T00:15:00Z;900;0.2;Gerät A"]
BODY = ("\n".join([HEADER, *ROWS]) + "\n").encode("cp1252")


def seed_api(api: Api) -> None:
    api.add_user("admin", "admin")
    seed_reference(api, "admin")


def _post(api: Api, content_type: str) -> tuple[int, dict[str, object]]:
    response = api.client.post(
        "/v1/readings",
        content=BODY,
        headers={**api.headers("admin"), "Content-Type": content_type},
    )
    return response.status_code, response.json()


def test_a_csv_body_reads_in_the_charset_its_content_type_names(api: Api) -> None:
    status, answer = _post(api, "text/csv")  # taken as UTF-8: the header is not
    assert status == 400
    assert "charset" in str(answer) and "--encoding" not in str(answer)
    status, answer = _post(api, "text/csv; charset=windows-1252")
    assert status == 200, answer
    summary = answer["summary"]
    assert isinstance(summary, dict)
    assert (summary["accepted"], summary["inserted"]) == (len(ROWS), len(ROWS))
    assert any("'Bemerkung (Zähler)'" in w for w in summary["warnings"])  # read as written


def test_a_charset_the_reader_cannot_take_is_refused(api: Api) -> None:
    status, answer = _post(api, "text/csv; charset=utf-16")
    assert status == 415 and "utf-16" in str(answer)
    status, answer = _post(api, "application/json; charset=latin-1")
    assert status == 415 and "JSON bodies are UTF-8" in str(answer)
