"""Bad spec files: each is refused with ONE line naming the file, the slot (or stage, stem or head entry), the
choice and the field; from the command line with exit code 2 and nothing written."""
from __future__ import annotations

import copy
import json

import pytest
import yaml

from arch_gpt.cli import main
from arch_gpt.errors import UserInputError
from arch_gpt.search.spaces import create_space
from arch_gpt.search.spaces.spec import SpecSpace, example_spec

BASE = {
    "name": "t",
    "stem": [{"op": "conv", "width": 8}],
    "stages": [{"width": 16, "stride": 2, "slots": [{"name": "b1"}, {"name": "b2"}]}],
    "choices": [{"code": "x", "op": "conv", "kernel": 3},
                {"code": "y", "op": "inverted_residual", "expansion": 3},
                {"code": "z", "op": "identity"}],
}


def edit(path: str, value=None, delete: bool = False):
    """A change of BASE at ``path`` (keys and indices separated by '/'): set ``value``, or delete."""
    def apply(spec: dict) -> dict:
        spec = copy.deepcopy(spec)
        *parents, last = [int(p) if p.isdigit() else p for p in path.split("/")]
        node = spec
        for p in parents:
            node = node[p]
        if delete:
            del node[last]
        elif isinstance(node, list) and last == len(node):
            node.append(value)
        else:
            node[last] = value
        return spec
    return apply


CASES = [
    # unknown op, unknown or misplaced fields
    (edit("choices/0/op", "convv"), "my.yaml: slot 'b1': choice 'x': field 'op': unknown op 'convv'"),
    (edit("choices/0/kernal", 3), "my.yaml: slot 'b1': choice 'x': field 'kernal': unknown field"),
    (edit("choices/2/kernel", 3), "slot 'b1': choice 'z': field 'kernel': does not apply to op 'identity'"),
    (edit("stages/0/slots/1/op", "pool"), "my.yaml: slot 'b2': field 'op': unknown op 'pool'"),
    (edit("stem/0/op", "dense"), "my.yaml: stem[0]: field 'op': unknown op 'dense'"),
    (edit("head", [{"op": "conv", "width_mult": 2}]), "my.yaml: head[0]: field 'width_mult': unknown field"),
    (edit("stages/0/depth", 3), "my.yaml: stages[0]: field 'depth': unknown field"),
    # widths that do not divide their groups, strides that shrink below 1 pixel, shapes zero cannot keep
    (edit("choices/3", {"code": "g", "op": "conv", "groups": 4, "width": 6}),
     "slot 'b1': choice 'g': field 'groups': width 6 is not divisible by groups 4"),
    (edit("choices/3", {"code": "g", "op": "conv", "groups": 3}),
     "slot 'b1': choice 'g': field 'groups': input channels 8 is not divisible by groups 3"),
    (edit("choices/3", {"code": "n", "op": "bottleneck", "width": 18}),
     "slot 'b1': choice 'n': field 'width': width 18 is not a multiple of the bottleneck's reduction 4"),
    (edit("input_size", [2, 2, 3]), None),  # 2 -> 1 pixel: fine
    (lambda s: {**edit("input_size", [2, 2, 3])(s), "stages": s["stages"] + [{"width": 32, "stride": 2, "slots": 1}]},
     "my.yaml: slot 's2b1': choice 'x': field 'stride': stride 2 on a 1x1 input would shrink it below "
     "1 pixel"),
    (edit("choices/3", {"code": "0", "op": "zero"}),
     "slot 'b1': choice '0': field 'op': zero keeps its input's shape"),
    (edit("choices/0/stride", 9), "slot 'b1': choice 'x': field 'stride': must be 1 to 8, got 9"),
    (edit("choices/0/kernel", 4), "slot 'b1': choice 'x': field 'kernel': must be odd"),
    # codes
    (edit("choices/1/code", "x"), "my.yaml: slot 'b1': choice 'x': field 'code': duplicate"),
    (edit("choices/1/code", "xy"), "slot 'b1': choice 'xy': field 'code': begins or is the beginning of code 'x'"),
    (edit("choices/1/code", 1), "slot 'b1': choices[1]: field 'code': must be a string, got 1 (int); quote it"),
    (edit("choices/1/code", "a b"), "slot 'b1': choices[1]: field 'code': must be 1 to 16 characters without"),
    (edit("choices/1/code", ""), "slot 'b1': choices[1]: field 'code': must be 1 to 16 characters"),
    # missing fields
    (edit("stages", delete=True), "my.yaml: field 'stages': missing"),
    (edit("choices/0/code", delete=True), "slot 'b1': choices[0]: field 'code': missing"),
    (edit("choices/1/expansion", delete=True), "slot 'b1': choice 'y': field 'expansion': missing: op "
                                               "'inverted_residual' needs it"),
    (edit("choices/0/op", delete=True), "slot 'b1': choice 'x': field 'op': missing"),
    (edit("choices", delete=True), "my.yaml: slot 'b1': field 'choices': missing"),
    (edit("stages/0/slots", delete=True), "my.yaml: stage 's1': field 'slots': missing"),
    (edit("stem/0/op", delete=True), "my.yaml: stem[0]: field 'op': missing"),
    (edit("choices/3", {"code": "w", "op": "conv", "width_mult": 2.0}), None),  # the stage's width is the base
    (lambda s: edit("choices/3", {"code": "w", "op": "conv", "width_mult": 2.0})(
        edit("stages/0/width", delete=True)(s)),
     "slot 'b1': choice 'w': field 'width_mult': needs a base width"),
    # wrong types and values
    (edit("choices/0/kernel", "3"), "slot 'b1': choice 'x': field 'kernel': must be an integer, got '3' (str)"),
    (edit("choices/0/kernel", True), "slot 'b1': choice 'x': field 'kernel': must be an integer, got True"),
    (edit("choices/0/width", 1.5), "slot 'b1': choice 'x': field 'width': must be an integer, got 1.5"),
    (edit("choices/0/width_mult", "big"), "slot 'b1': choice 'x': field 'width_mult': must be a number"),
    (edit("choices/0/width_mult", 0.01), "choice 'x': field 'width_mult': 0.01 x width 16 gives 0 channels"),
    (lambda s: edit("choices/0/width", 8)(edit("choices/0/width_mult", 2)(s)),
     "choice 'x': field 'width_mult': give width or width_mult, not both"),
    (edit("choices", "x,y,z"), "slot 'b1': field 'choices': must be a non-empty list, got 'x,y,z' (str)"),
    (edit("choices", []), "slot 'b1': field 'choices': must be a non-empty list"),
    (edit("choices/0", "conv"), "slot 'b1': choices[0]: expected a mapping of fields, got 'conv' (str)"),
    (edit("stages", {"width": 16}), "my.yaml: field 'stages': must be a non-empty list"),
    (edit("stages/0/slots", 0), "my.yaml: stage 's1': field 'slots': must be 1 to 1000, got 0"),
    (edit("stages/0/slots", "two"), "my.yaml: stage 's1': field 'slots': must be a number of slots"),
    (edit("stages/0/slots/0", 5), "my.yaml: stage 's1': slots[0]: expected a mapping of fields, got 5 (int)"),
    (edit("stages/0/width", 0), "my.yaml: stage 's1': field 'width': must be 1 to 4096, got 0"),
    (edit("stages/0/slots/1/name", "b1"), "my.yaml: slot 'b1': field 'name': two slots have this name"),
    (edit("input_size", [32, 32]), "my.yaml: input_size: expected (H, W, C)"),
    (edit("name", 5), "my.yaml: field 'name': must be a non-empty string"),
    (edit("choices", [{"code": "x", "op": "conv"}]), "my.yaml: field 'stages': no slot has two choices"),
]


@pytest.mark.parametrize("change, needle", CASES)
def test_a_bad_spec_is_one_located_error(tmp_path, change, needle):
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump(change(BASE)))
    if needle is None:
        create_space(path)
        return
    with pytest.raises(UserInputError) as err:
        create_space(path)
    message = str(err.value)
    assert needle in message and message.startswith(str(path)) and "\n" not in message


def test_the_same_errors_for_a_dict_and_a_json_file(tmp_path):
    spec = edit("choices/0/op", "convv")(BASE)
    with pytest.raises(UserInputError, match="<spec>: slot 'b1': choice 'x': field 'op'"):
        create_space(spec)
    path = tmp_path / "my.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(UserInputError, match="my.json: slot 'b1': choice 'x': field 'op'"):
        create_space(str(path))


def test_an_input_size_too_small_for_the_strides_is_named():
    with pytest.raises(UserInputError, match=r"nasbench-macro.yaml: slot 's3b1': choice '0': "
                                             r"field 'stride': stride 2 on a 1x1 input .*network input 4x4x3"):
        SpecSpace(example_spec("nasbench-macro"), input_size=(4, 4, 3))


@pytest.mark.parametrize("text, suffix, needle", [
    ("stages: [\n  {width: 1\n", ".yaml", "line 3: not valid YAML"),
    ("{\"stages\": }", ".json", "line 1: not valid JSON"),
    ("- 1\n- 2\n", ".yaml", "a spec is a mapping (stem, stages, head, ...), got list"),
    ("", ".yml", "a spec is a mapping (stem, stages, head, ...), got NoneType"),
    (b"\xff\xfe", ".yaml", "not UTF-8 text"),
])
def test_unreadable_spec_files(tmp_path, text, suffix, needle):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(UserInputError, match=str(path)) as err:
        create_space(path)
    assert needle in str(err.value)


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(UserInputError, match="nothere.yaml: spec file not found"):
        create_space(tmp_path / "nothere.yaml")
    with pytest.raises(UserInputError, match="spec.txt: a spec file ends with .yaml, .yml, .json"):
        SpecSpace(tmp_path / "spec.txt")
    with pytest.raises(UserInputError, match="no bundled example 'resnet'; choose one of: nasbench-macro, widths"):
        example_spec("resnet")


@pytest.mark.parametrize("key, needle", [
    ("xq", "key 'xq': at character 2, slot 'b2' expects one of the codes 'x', 'y', 'z'"),
    ("xyz", "key 'xyz': 1 characters left after the last slot"),
    (12, "a key is a string of the slots' codes, got 12"),
])
def test_bad_keys_are_named(key, needle):
    with pytest.raises(UserInputError, match="<spec>") as err:
        create_space(BASE).parse(key)
    assert needle in str(err.value)


def test_cli_refuses_a_bad_spec_in_one_line_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump(edit("choices/1/expansion", delete=True)(BASE)))
    table = tmp_path / "t.json"
    table.write_text(json.dumps({"xx": {"acc": 1.0}}))
    out = tmp_path / "run"
    code = main(["search", "--space", str(path), "--benchmark", str(table), "--fitness-field", "acc",
                 "--strategy", "ga", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and not out.exists()
    assert f"{path}: slot 'b1': choice 'y': field 'expansion': missing" in err
