"""NAS-Bench-101 TFRecord reading without TensorFlow: files written here in the real format, read back."""
import base64
import json
import struct

import numpy as np
import pytest

from arch_gpt.errors import UserInputError
from arch_gpt.zoo.nasbench101 import cell_hash
from arch_gpt.zoo.nasbench_records import (
    Evaluation, NB101Record, RecordFileError, crc32c, decode_metrics, filter_by_validation, frame_record,
    masked_crc32c, mean_validation_accuracy, read_records, record_payload, write_records,
)

MATRIX = np.array([[0, 1, 0, 0, 1, 1, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 1, 0],
                   [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]], dtype=np.uint8)
OPS = ("input", "conv3x3-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "conv3x3-bn-relu", "conv1x1-bn-relu", "output")
HASH = "00005c142e6f48ac74fdcf73e3439874"
SMALL = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=np.uint8)
SMALL_OPS = ("input", "maxpool3x3", "output")


def _record(h, matrix, ops, val, epochs=108, params=1000):
    evals = (Evaluation(0.0, 0.0, 0.1, 0.1, 0.1),
             Evaluation(epochs / 2, 50.0, 0.5, val - 0.1, 0.5),
             Evaluation(float(epochs), 100.0, 1.0, val, val - 0.01, "/ckpt/model.ckpt-1"))
    return NB101Record(h, epochs, matrix, ops, evals, params, 123.5)


def _records():
    small_hash = cell_hash(SMALL, SMALL_OPS)
    return [_record(HASH, MATRIX, OPS, 0.93), _record(HASH, MATRIX, OPS, 0.91), _record(HASH, MATRIX, OPS, 0.92),
            _record(small_hash, SMALL, SMALL_OPS, 0.95), _record(small_hash, SMALL, SMALL_OPS, 0.80),
            _record(small_hash, SMALL, SMALL_OPS, 0.99, epochs=36)]


def test_crc32c_known_vectors():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 test vector
    assert crc32c(b"") == 0


def test_masked_crc_rotates_and_adds_the_tfrecord_constant():
    crc = crc32c(b"abc")
    assert masked_crc32c(b"abc") == ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def test_write_then_read_back(tmp_path):
    records = _records()
    path = write_records(tmp_path / "nb.tfrecord", records)
    back = list(read_records(path))
    assert back == records
    assert all((a.matrix == b.matrix).all() for a, b in zip(back, records))
    assert back[0].final.checkpoint_path == "/ckpt/model.ckpt-1"
    assert back[0].trainable_parameters == 1000 and back[0].total_time == 123.5
    assert cell_hash(back[0].matrix, back[0].ops) == back[0].hash


def test_payload_is_the_nasbench_json_row(tmp_path):
    row = json.loads(record_payload(_records()[0]))
    assert row[:4] == [HASH, 108, "".join(map(str, MATRIX.ravel())), ",".join(OPS)]
    assert decode_metrics(base64.b64decode(row[4]))[1] == 1000


def test_metrics_field_numbers_of_model_metrics_proto():
    """A ModelMetrics message written byte by byte from the .proto field numbers."""
    def double(field, value):
        return bytes([field << 3 | 1]) + struct.pack("<d", value)
    evaluation = double(1, 108.0) + double(2, 1700.5) + double(3, 1.0) + double(4, 0.925) + double(5, 0.92)
    evaluation += bytes([6 << 3 | 2, 3]) + b"a/b"
    params = bytes([2 << 3 | 0]) + b"\x8a\x98\x8a\x04"  # varint 8,555,530
    message = bytes([1 << 3 | 2, len(evaluation)]) + evaluation + params
    message += double(3, 5000.0)
    evals, count, total = decode_metrics(message)
    assert evals == (Evaluation(108.0, 1700.5, 1.0, 0.925, 0.92, "a/b"),)
    assert count == 8_555_530 and total == 5000.0


def test_filter_by_validation_uses_the_mean_over_repeats_at_the_epoch(tmp_path):
    path = write_records(tmp_path / "nb.tfrecord", _records())
    means = mean_validation_accuracy(read_records(path))
    assert means[HASH] == pytest.approx(0.92)
    assert means[cell_hash(SMALL, SMALL_OPS)] == pytest.approx(0.875)
    assert filter_by_validation(read_records(path)) == {HASH}
    assert filter_by_validation(read_records(path), threshold=0.85) == {HASH, cell_hash(SMALL, SMALL_OPS)}
    assert filter_by_validation(read_records(path), epochs=36) == {cell_hash(SMALL, SMALL_OPS)}


def _offset_of(records, index):
    return sum(len(frame_record(record_payload(r))) for r in records[:index])


def test_corrupt_data_crc_names_record_and_offset(tmp_path):
    records = _records()
    path = write_records(tmp_path / "nb.tfrecord", records)
    raw = bytearray(path.read_bytes())
    offset = _offset_of(records, 1)
    raw[offset + 12 + 5] ^= 0x01  # a payload byte of record 1
    path.write_bytes(bytes(raw))
    with pytest.raises(RecordFileError, match=f"record 1 at byte offset {offset}: data CRC") as err:
        list(read_records(path))
    assert isinstance(err.value, UserInputError) and err.value.record == 1 and err.value.offset == offset


def test_corrupt_length_crc_is_detected(tmp_path):
    path = write_records(tmp_path / "nb.tfrecord", _records())
    raw = bytearray(path.read_bytes())
    raw[8] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(RecordFileError, match="record 0 at byte offset 0: length CRC"):
        list(read_records(path))


def test_truncated_file_names_the_last_record(tmp_path):
    records = _records()
    path = write_records(tmp_path / "nb.tfrecord", records)
    path.write_bytes(path.read_bytes()[:-10])
    last = len(records) - 1
    with pytest.raises(RecordFileError, match=f"record {last} at byte offset {_offset_of(records, last)}: truncated"):
        list(read_records(path))


def test_truncated_header_is_reported(tmp_path):
    path = write_records(tmp_path / "nb.tfrecord", _records()[:1])
    path.write_bytes(path.read_bytes() + b"\x01\x02\x03")
    with pytest.raises(RecordFileError, match="record 1 .*truncated header"):
        list(read_records(path))


def test_payload_that_is_not_json_is_reported(tmp_path):
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(frame_record(record_payload(_records()[0])) + frame_record(b"\xff not json"))
    with pytest.raises(RecordFileError, match="record 1 .*not JSON"):
        list(read_records(path))


def test_payload_with_wrong_arity_is_reported(tmp_path):
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(frame_record(json.dumps([HASH, 108, "0110"]).encode()))
    with pytest.raises(RecordFileError, match="record 0 .*JSON list"):
        list(read_records(path))


def test_payload_with_bad_metrics_is_reported(tmp_path):
    row = [HASH, 108, "".join(map(str, MATRIX.ravel())), ",".join(OPS), base64.b64encode(b"\x0a\x50").decode()]
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(frame_record(json.dumps(row).encode()))
    with pytest.raises(RecordFileError, match="field 'metrics'"):
        list(read_records(path))


def test_payload_with_non_square_adjacency_is_reported(tmp_path):
    row = [HASH, 108, "01100", "input,output", ""]
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(frame_record(json.dumps(row).encode()))
    with pytest.raises(RecordFileError, match="field 'adjacency'"):
        list(read_records(path))
