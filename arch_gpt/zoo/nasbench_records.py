"""Read (and, for tests, write) NAS-Bench-101's TFRecord files without TensorFlow or protobuf.

Framing of each record: uint64 little-endian length, uint32 masked CRC32C of those 8 bytes, the data,
uint32 masked CRC32C of the data (mask: rotate right by 15 bits, add 0xa282ead8). The data is the JSON
list ``[hash, epochs, adjacency, operations, metrics]``: ``adjacency`` a string of V*V '0'/'1' digits,
``operations`` comma-separated op names, ``metrics`` a base64 ``nasbench.ModelMetrics`` protobuf::

    ModelMetrics   { repeated EvaluationData evaluation_data = 1; int32 trainable_parameters = 2;
                     double total_time = 3; }
    EvaluationData { double current_epoch = 1; double training_time = 2; double train_accuracy = 3;
                     double validation_accuracy = 4; double test_accuracy = 5; string checkpoint_path = 6; }

Each training repeat is its own record (same hash and epochs). Errors name the file, the record
number (from 0) and the byte offset where the record starts.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import struct
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from arch_gpt.errors import UserInputError
from arch_gpt.io import atomic_path


class RecordFileError(UserInputError):
    """A NAS-Bench-101 record file that is corrupt, truncated or holds a bad payload."""

    def __init__(self, path: str | os.PathLike, record: int, offset: int, message: str):
        self.path, self.record, self.offset = str(path), record, offset
        super().__init__(f"{path}: record {record} at byte offset {offset}: {message}")


# ----------------------------------------------------------------------------- CRC32C (Castagnoli)

def _crc_tables() -> tuple[tuple[int, ...], ...]:
    """Eight 256-entry tables for slicing-by-8 (table k: a byte followed by k zero bytes)."""
    base = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        base.append(crc)
    tables = [base]
    for _ in range(7):
        tables.append([(c >> 8) ^ base[c & 0xFF] for c in tables[-1]])
    return tuple(tuple(t) for t in tables)


_TABLES = _crc_tables()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli polynomial, reflected) of ``data``, continuing from ``crc``; slicing-by-8."""
    t0, t1, t2, t3, t4, t5, t6, t7 = _TABLES
    crc ^= 0xFFFFFFFF
    n = len(data) // 8 * 8
    for a, b in struct.iter_unpack("<II", memoryview(data)[:n]):
        a ^= crc
        crc = (t7[a & 0xFF] ^ t6[(a >> 8) & 0xFF] ^ t5[(a >> 16) & 0xFF] ^ t4[a >> 24]
               ^ t3[b & 0xFF] ^ t2[(b >> 8) & 0xFF] ^ t1[(b >> 16) & 0xFF] ^ t0[b >> 24])
    for byte in memoryview(data)[n:]:
        crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ----------------------------------------------------------------------------- protobuf wire format

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("varint runs past the end of the message")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of each field of a message; unknown wire types are errors."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise ValueError(f"field {number}: 8-byte value runs past the end of the message")
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError(f"field {number}: {size}-byte value runs past the end of the message")
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            if pos + 4 > len(buf):
                raise ValueError(f"field {number}: 4-byte value runs past the end of the message")
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"field {number}: unsupported wire type {wire}")
        yield number, wire, value


def _put_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _double(number: int, value: float) -> bytes:
    return _put_varint(number << 3 | 1) + struct.pack("<d", value)


def _bytes_field(number: int, value: bytes) -> bytes:
    return _put_varint(number << 3 | 2) + _put_varint(len(value)) + value


# ----------------------------------------------------------------------------- records

@dataclass(frozen=True)
class Evaluation:
    """One ``EvaluationData`` message: accuracies at ``current_epoch`` of one training run."""
    current_epoch: float = 0.0
    training_time: float = 0.0
    train_accuracy: float = 0.0
    validation_accuracy: float = 0.0
    test_accuracy: float = 0.0
    checkpoint_path: str = ""


_EVAL_DOUBLES = {1: "current_epoch", 2: "training_time", 3: "train_accuracy", 4: "validation_accuracy",
                 5: "test_accuracy"}


@dataclass(frozen=True)
class NB101Record:
    """One record: a cell trained once for ``epochs`` epochs; ``evaluations[-1]`` is the final one."""
    hash: str
    epochs: int
    matrix: np.ndarray = field(compare=False)
    ops: tuple[str, ...]
    evaluations: tuple[Evaluation, ...]
    trainable_parameters: int = 0
    total_time: float = 0.0

    @property
    def final(self) -> Evaluation:
        """The evaluation at the end of training."""
        return self.evaluations[-1]


def decode_metrics(data: bytes) -> tuple[tuple[Evaluation, ...], int, float]:
    """Decode a ModelMetrics message into (evaluations, trainable_parameters, total_time)."""
    evaluations, params, total = [], 0, 0.0
    for number, wire, value in _fields(data):
        if number == 1 and wire == 2:
            kw = {}
            for n, w, v in _fields(value):
                if n in _EVAL_DOUBLES and w == 1:
                    kw[_EVAL_DOUBLES[n]] = struct.unpack("<d", v)[0]
                elif n == 6 and w == 2:
                    kw["checkpoint_path"] = v.decode("utf-8")
            evaluations.append(Evaluation(**kw))
        elif number == 2 and wire == 0:
            params = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 3 and wire == 1:
            total = struct.unpack("<d", value)[0]
    return tuple(evaluations), params, total


def encode_metrics(evaluations: Iterable[Evaluation], trainable_parameters: int, total_time: float) -> bytes:
    """Encode a ModelMetrics message (the inverse of :func:`decode_metrics`)."""
    out = bytearray()
    for ev in evaluations:
        body = b"".join(_double(n, getattr(ev, name)) for n, name in _EVAL_DOUBLES.items())
        if ev.checkpoint_path:
            body += _bytes_field(6, ev.checkpoint_path.encode("utf-8"))
        out += _bytes_field(1, body)
    out += _put_varint(2 << 3 | 0) + _put_varint(trainable_parameters)
    out += _double(3, total_time)
    return bytes(out)


def _parse_payload(data: bytes) -> NB101Record:
    try:
        row = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"payload is not JSON ({err})") from None
    if not isinstance(row, list) or len(row) != 5:
        raise ValueError("payload must be the JSON list [hash, epochs, adjacency, operations, metrics]")
    module_hash, epochs, adjacency, operations, metrics = row
    if not isinstance(module_hash, str) or not isinstance(epochs, int):
        raise ValueError("payload fields 'hash' (string) and 'epochs' (integer) have wrong types")
    if not isinstance(adjacency, str) or not set(adjacency) <= {"0", "1"}:
        raise ValueError("payload field 'adjacency' must be a string of 0/1 digits")
    dim = int(round(len(adjacency) ** 0.5))
    if dim * dim != len(adjacency) or dim < 2:
        raise ValueError(f"payload field 'adjacency' has {len(adjacency)} digits, not a square matrix")
    if not isinstance(operations, str) or len(operations.split(",")) != dim:
        raise ValueError(f"payload field 'operations' must name {dim} comma-separated ops")
    if not isinstance(metrics, str):
        raise ValueError("payload field 'metrics' must be a base64 string")
    try:
        raw = base64.b64decode(metrics, validate=True)
        evaluations, params, total = decode_metrics(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"payload field 'metrics' is not a ModelMetrics message ({err})") from None
    matrix = np.frombuffer(adjacency.encode("ascii"), dtype=np.uint8).reshape(dim, dim) - ord("0")
    return NB101Record(module_hash, epochs, matrix, tuple(operations.split(",")), evaluations, params, total)


def read_records(path: str | os.PathLike, verify_crc: bool = True) -> Iterator[NB101Record]:
    """Stream the records of a NAS-Bench-101 ``.tfrecord`` file, checking both CRCs of each record."""
    path = Path(path)
    with open(path, "rb") as fh:
        index = offset = 0
        while True:
            header = fh.read(12)
            if not header:
                return
            if len(header) < 12:
                raise RecordFileError(path, index, offset, f"truncated header ({len(header)} of 12 bytes)")
            (length,), (length_crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
            if verify_crc and masked_crc32c(header[:8]) != length_crc:
                raise RecordFileError(path, index, offset, "length CRC mismatch (corrupt file)")
            data = fh.read(length)
            footer = fh.read(4)
            if len(data) < length or len(footer) < 4:
                raise RecordFileError(path, index, offset, f"truncated record (expected {length} data bytes + CRC)")
            if verify_crc and masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise RecordFileError(path, index, offset, "data CRC mismatch (corrupt record)")
            try:
                yield _parse_payload(data)
            except ValueError as err:
                raise RecordFileError(path, index, offset, str(err)) from None
            index += 1
            offset += 16 + length


def frame_record(data: bytes) -> bytes:
    """One TFRecord frame around ``data``."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


def record_payload(record: NB101Record) -> bytes:
    """The JSON payload of a record, as NAS-Bench-101 writes it."""
    metrics = encode_metrics(record.evaluations, record.trainable_parameters, record.total_time)
    row = [record.hash, record.epochs, "".join(str(int(x)) for x in np.asarray(record.matrix).ravel()),
           ",".join(record.ops), base64.b64encode(metrics).decode("ascii")]
    return json.dumps(row).encode("utf-8")


def write_records(path: str | os.PathLike, records: Iterable[NB101Record]) -> Path:
    """Write records in the real NAS-Bench-101 TFRecord format (atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for record in records:
            fh.write(frame_record(record_payload(record)))
    return path


def mean_validation_accuracy(records: Iterable[NB101Record], epochs: int = 108) -> dict[str, float]:
    """Mean final validation accuracy over the repeats of each hash trained for ``epochs`` epochs."""
    sums: dict[str, list[float]] = defaultdict(list)
    for record in records:
        if record.epochs == epochs and record.evaluations:
            sums[record.hash].append(record.final.validation_accuracy)
    return {h: float(np.mean(v)) for h, v in sums.items()}


def filter_by_validation(records: Iterable[NB101Record], epochs: int = 108, threshold: float = 0.90) -> set[str]:
    """Hashes whose mean final validation accuracy at ``epochs`` epochs is at least ``threshold``."""
    return {h for h, acc in mean_validation_accuracy(records, epochs).items() if acc >= threshold}
