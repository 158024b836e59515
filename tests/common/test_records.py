"""Tests for common.records' Object2Vec JSON Lines writer (the RecordIO-protobuf codec it names is tested in
tests/recordio_protobuf)."""

import io
import json

import numpy as np
import pytest

from common import records


def test_the_notebooks_find_the_recordio_writer_and_reader_here():
    import recordio_protobuf

    assert records.write_records is recordio_protobuf.write_records
    assert records.read_records is recordio_protobuf.read_records


def test_jsonlines_pairs_single_tokens_and_float_labels():
    out = io.StringIO()
    assert records.write_jsonlines_pairs(out, np.array([196, 0]), np.array([242, 7]), np.array([4.0, 2.5])) == 2
    assert out.getvalue() == '{"in0": [196], "in1": [242], "label": 4.0}\n{"in0": [0], "in1": [7], "label": 2.5}\n'


def test_jsonlines_pairs_int_bool_and_no_labels_to_a_binary_file():
    out = io.BytesIO()
    records.write_jsonlines_pairs(out, [1, 2], [3, 4], np.array([True, False]))
    assert out.getvalue() == b'{"in0": [1], "in1": [3], "label": 1}\n{"in0": [2], "in1": [4], "label": 0}\n'
    out = io.StringIO()
    records.write_jsonlines_pairs(out, np.array([5]), np.array([6]))
    assert out.getvalue() == '{"in0": [5], "in1": [6]}\n'


def test_jsonlines_pairs_token_lists_in_chunks():
    out = io.StringIO()
    in0 = np.array([[6, 17, 606, 19], [1, 2, 3, 4], [9, 9, 9, 9]])
    in1 = [[16, 21, 13], [5], [8, 7]]
    records.write_jsonlines_pairs(out, in0, in1, np.array([0, 1, 2]), chunk_rows=2)
    lines = out.getvalue().splitlines()
    assert lines[0] == '{"in0": [6, 17, 606, 19], "in1": [16, 21, 13], "label": 0}'
    assert [json.loads(line) for line in lines[1:]] == [
        {"in0": [1, 2, 3, 4], "in1": [5], "label": 1},
        {"in0": [9, 9, 9, 9], "in1": [8, 7], "label": 2},
    ]


def test_jsonlines_pairs_of_no_rows_writes_nothing():
    out = io.StringIO()
    assert records.write_jsonlines_pairs(out, np.zeros(0, dtype=int), np.zeros(0, dtype=int), np.zeros(0)) == 0
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    "in0, in1, labels, message",
    [
        ([1, -2], [3, 4], None, "in0 token ids must be non-negative, got -2"),
        ([1.5, 2.0], [3, 4], None, r"in0 must be integer token ids, 1-D or 2-D, got float64 \(2,\)"),
        ([1, 2], [[3], []], None, "in1 row 1 must be a non-empty list of non-negative integer ids"),
        ([1, 2], [3, 4, 5], None, r"same number of rows, got \{'in0': 2, 'in1': 3\}"),
        ([1, 2], [3, 4], [1.0], r"got \{'in0': 2, 'in1': 2, 'labels': 1\}"),
        ([1, 2], [3, 4], [1.0, np.nan], r"labels must be finite \(JSON has no NaN/inf\), got nan"),
        ([1, 2], [3, 4], ["a", "b"], "labels must be a 1-D numeric array"),
    ],
)
def test_jsonlines_pairs_errors(in0, in1, labels, message):
    out = io.StringIO()
    with pytest.raises(ValueError, match=message):
        records.write_jsonlines_pairs(out, in0, in1, labels)
    assert out.getvalue() == ""
