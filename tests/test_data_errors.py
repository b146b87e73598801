"""Bad input gets a one-line DataError naming the file (and the line where there is one)."""

from __future__ import annotations

import gzip
import json
import re
import shutil

import pytest

from benchmark.data.errors import DataError
from benchmark.data.readers import read_path

ML_HEADER = "userId,movieId,rating,timestamp\n"
REVIEW = {"reviewerID": "A1", "asin": "I1", "overall": 5.0, "unixReviewTime": 1500000000}
INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def make(folder, files: dict):
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


def jsonl(*records) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def raises(path, pattern: str, **kwargs) -> DataError:
    """read_path fails with a one-line DataError whose message matches `pattern`."""
    with pytest.raises(DataError) as err:
        read_path(path, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    assert re.search(pattern, message), message
    return err.value


# -- gzip ----------------------------------------------------------------------------------------


def test_truncated_gzip_reviews(tmp_path, shared_data):
    data = (shared_data / "amazon2018_gift_cards" / "Gift_Cards_5.json.gz").read_bytes()
    (tmp_path / "Gift_Cards_5.json.gz").write_bytes(data[: len(data) // 2])
    err = raises(tmp_path / "Gift_Cards_5.json.gz", r"Gift_Cards_5\.json\.gz: truncated or corrupt gzip")
    assert err.path.endswith("Gift_Cards_5.json.gz")


def test_truncated_gzip_ratings_read_by_pandas(tmp_path, shared_data):
    data = (shared_data / "ml-1m" / "ratings_subset_users_1-2999.dat.gz").read_bytes()
    make(tmp_path / "ml-1m", {"ratings.dat.gz": data[:50_000]})
    shutil.copy(shared_data / "ml-1m" / "movies.dat", tmp_path / "ml-1m")
    raises(tmp_path / "ml-1m", r"ratings\.dat\.gz: truncated or corrupt gzip")


def test_corrupt_gzip_middle_is_reported_as_gzip_damage(tmp_path, shared_data):
    """Zeroed bytes inside the stream decompress to garbage; the error still says the gz is bad."""
    data = bytearray((shared_data / "amazon2018_gift_cards" / "Gift_Cards_5.json.gz").read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    (tmp_path / "Gift_Cards_5.json.gz").write_bytes(bytes(data))
    raises(tmp_path / "Gift_Cards_5.json.gz", r"Gift_Cards_5\.json\.gz: truncated or corrupt gzip")


def test_truncated_gzip_metadata(tmp_path, shared_data):
    shutil.copy(shared_data / "amazon2018_gift_cards" / "Gift_Cards_5.json.gz", tmp_path)
    meta = (shared_data / "amazon2018_gift_cards" / "meta_Gift_Cards.json.gz").read_bytes()
    (tmp_path / "meta_Gift_Cards.json.gz").write_bytes(meta[: len(meta) // 3])
    raises(tmp_path, r"meta_Gift_Cards\.json\.gz: truncated or corrupt gzip")


# -- missing columns / keys / fields ------------------------------------------------------------


def test_missing_column_in_csv_header(tmp_path):
    folder = make(tmp_path / "ml", {"ratings.csv": "userId,movieId,timestamp\n1,2,3\n"})
    raises(folder, r"ratings\.csv:1: missing column 'rating'")


def test_missing_field_names_the_line(tmp_path):
    folder = make(tmp_path / "ml", {"ratings.csv": ML_HEADER + "1,2,4.0,100\n1,3,4.0\n"})
    raises(folder, r"ratings\.csv:3: missing field 'timestamp'")


def test_missing_key_in_amazon_line(tmp_path):
    no_rating = {k: v for k, v in REVIEW.items() if k != "overall"}
    path = make(tmp_path, {"X_5.json": jsonl(REVIEW, REVIEW | {"asin": "I2"}, no_rating)}) / "X_5.json"
    raises(path, r"X_5\.json:3: missing key 'overall'")


def test_missing_key_in_amazon_metadata(tmp_path):
    make(tmp_path, {"X_5.json": jsonl(REVIEW), "meta_X.json": jsonl({"title": "no id"})})
    raises(tmp_path / "X_5.json", r"meta_X\.json:1: missing key 'asin'")


def test_recbole_header_without_timestamp(tmp_path):
    folder = make(tmp_path / "d", {"d.inter": "user_id:token\titem_id:token\trating:float\n1\t2\t3\n"})
    raises(folder, r"d\.inter:1: missing timestamp field")


def test_recbole_untyped_header(tmp_path):
    folder = make(tmp_path / "d", {"d.inter": "user_id\titem_id\ttimestamp\n1\t2\t3\n"})
    raises(folder, r"d\.inter:1: header field 'user_id' is not 'name:type'")


def test_wrong_field_count(tmp_path):
    folder = make(tmp_path / "ml", {"ratings.csv": ML_HEADER + "1,2,4.0,100\n1,3,4.0,100,7\n"})
    raises(folder, r"ratings\.csv:3: malformed line")
    folder = make(tmp_path / "ml100k", {"u.data": "1\t2\t3\n"})
    raises(folder, r"u\.data:1: expected 4 fields")


def test_ml1m_single_colon_separator(tmp_path):
    folder = make(tmp_path / "ml-1m", {"ratings.dat": "1::2::3::100\n1:2:3:100\n"})
    raises(folder, r"ratings\.dat:2: fields must be separated by '::'")


# -- non-numeric values ---------------------------------------------------------------------------


def test_non_numeric_rating_csv(tmp_path):
    folder = make(tmp_path / "ml", {"ratings.csv": ML_HEADER + "1,2,4.0,100\n\n1,4,abc,100\n"})
    # the blank line still counts, so the line number is the one an editor shows
    raises(folder, r"ratings\.csv:4: field 'rating' is not a number: 'abc'")


def test_non_numeric_rating_u_data(tmp_path):
    folder = make(tmp_path / "ml100k", {"u.data": "1\t2\t3\t100\n1\t3\tfive\t100\n"})
    raises(folder, r"u\.data:2: field 'rating' is not a number: 'five'")


def test_non_numeric_rating_recbole(tmp_path):
    folder = make(tmp_path / "d", {"d.inter": INTER_HEADER + "1\t2\t3\t5\n1\t2\tbad\t5\n"})
    raises(folder, r"d\.inter:3: field 'rating:float' is not a number: 'bad'")


@pytest.mark.parametrize("bad", ["five", None, True])
def test_non_numeric_rating_amazon(tmp_path, bad):
    path = make(tmp_path, {"X_5.json": jsonl(REVIEW, REVIEW | {"overall": bad})}) / "X_5.json"
    raises(path, r"X_5\.json:2: key 'overall' is not a number")


def test_empty_user_id_amazon(tmp_path):
    path = make(tmp_path, {"X_5.json": jsonl(REVIEW, REVIEW | {"reviewerID": " "})}) / "X_5.json"
    raises(path, r"X_5\.json:2: key 'reviewerID' is empty")


# -- encodings ------------------------------------------------------------------------------------


def test_non_utf8_in_csv(tmp_path):
    folder = make(
        tmp_path / "ml",
        {
            "ratings.csv": ML_HEADER + "1,1,4.0,100\n",
            "movies.csv": b"movieId,title,genres\n1,Toy Story (1995),Comedy\n2,Mis\xe9rables (1995),Drama\n",
        },
    )
    raises(folder, r"movies\.csv:3: not valid UTF-8 text \(byte 0xe9")


def test_non_utf8_in_jsonl(tmp_path):
    bad = b'{"reviewerID": "\xff", "asin": "I1", "overall": 5.0, "unixReviewTime": 1}\n'
    path = make(tmp_path, {"X_5.json": jsonl(REVIEW).encode() + bad}) / "X_5.json"
    raises(path, r"X_5\.json:2: not valid UTF-8 text")


def test_non_utf8_in_recbole_item(tmp_path):
    folder = make(
        tmp_path / "d",
        {"d.inter": INTER_HEADER + "1\t2\t3\t5\n", "d.item": b"item_id:token\ttitle:token_seq\n2\tok\n3\tMis\xe9rables\n"},
    )
    raises(folder, r"d\.item:3: not valid UTF-8 text")


def test_latin1_formats_do_not_fail_on_high_bytes(tmp_path):
    """u.item and movies.dat are latin-1 by definition: 0xe9 is é there, not an error."""
    folder = make(tmp_path / "ml-1m", {"ratings.dat": "1::2::3::100\n", "movies.dat": b"2::Mis\xe9rables (1995)::Drama\n"})
    assert read_path(folder).items.loc["2", "title"] == "Misérables (1995)"


# -- malformed records -----------------------------------------------------------------------------


def test_broken_json_line(tmp_path):
    path = make(tmp_path, {"X_5.json": jsonl(REVIEW, '{"reviewerID": "A", "asin"')}) / "X_5.json"
    raises(path, r"X_5\.json:2: not a JSON object")


def test_python_literal_lines_are_never_evaluated(tmp_path):
    marker = tmp_path / "evaluated"
    line = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    path = make(tmp_path, {"reviews_X_5.json": jsonl(REVIEW | {"helpful": [0, 0]}, line)}) / "reviews_X_5.json"
    raises(path, r"reviews_X_5\.json:2: neither a JSON object nor a Python literal")
    assert not marker.exists()


def test_json_that_is_not_amazon_reviews(tmp_path):
    path = make(tmp_path, {"X_5.json": jsonl({"a": 1})}) / "X_5.json"
    raises(path, r"X_5\.json:1: JSON records are not Amazon reviews")


# -- empty files, missing paths, unknown formats ---------------------------------------------------


@pytest.mark.parametrize(
    "name, content",
    [("ratings.csv", b""), ("ratings.csv.gz", gzip.compress(b"")), ("u.data", b"")],
)
def test_empty_file(tmp_path, name, content):
    folder = make(tmp_path / "d", {name: content})
    raises(folder, re.escape(name) + r": empty file")


def test_empty_jsonl_and_blank_lines_only(tmp_path):
    raises(make(tmp_path / "a", {"X_5.json": ""}) / "X_5.json", r"X_5\.json: empty file")
    raises(make(tmp_path / "b", {"X_5.json": "\n\n"}) / "X_5.json", r"X_5\.json: empty file")


def test_header_only_file(tmp_path):
    raises(make(tmp_path / "ml", {"ratings.csv": ML_HEADER}), r"ratings\.csv: no interactions")


def test_path_does_not_exist(tmp_path):
    raises(tmp_path / "nowhere", r"nowhere: path does not exist")


def test_unrecognised_format_lists_what_was_looked_for(tmp_path):
    folder = make(tmp_path / "stuff", {"notes.txt": "hello"})
    err = raises(folder, r"unrecognised dataset format: looked for u\.data .*ratings\.dat .*ratings\.csv .*\.inter")
    assert "Amazon" in str(err)
    raises(folder / "notes.txt", r"notes\.txt: unrecognised dataset file")


def test_unknown_format_name(tmp_path):
    folder = make(tmp_path / "ml", {"ratings.csv": ML_HEADER + "1,2,4.0,100\n"})
    raises(folder, r"unknown format 'movielens-10m'; known: movielens-100k", format="movielens-10m")


def test_metadata_file_passed_as_reviews(tmp_path, shared_data):
    raises(shared_data / "amazon2018_gift_cards" / "meta_Gift_Cards.json.gz", r"metadata file; pass the reviews")


def test_explicit_metadata_must_exist(tmp_path):
    path = make(tmp_path, {"X_5.json": jsonl(REVIEW)}) / "X_5.json"
    raises(path, r"missing_meta\.json: metadata file does not exist", meta=tmp_path / "missing_meta.json")


def test_recbole_folder_with_two_inter_files(tmp_path):
    folder = make(tmp_path / "d", {"a.inter": INTER_HEADER, "b.inter": INTER_HEADER})
    raises(folder, r"expected one RecBole \.inter file in the folder, found a\.inter, b\.inter")
