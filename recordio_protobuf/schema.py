"""The ``aialgs.data.Record`` protobuf schema SageMaker's built-in algorithms read and write.

SDK v3 ships no protobuf schema for it (its writer and reader raise ``NotImplementedError``), so the schema is built
here with the ``protobuf`` library, from the field numbers of the v2 SDK's ``record.proto``.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

VALUES_KEY = "values"  # the name SageMaker's built-in algorithms read features and labels from


def _build_schema() -> descriptor_pool.DescriptorPool:
    """The ``aialgs.data`` proto2 file of the v2 SDK's ``record.proto``, in a pool of its own."""
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="aialgs/data/record.proto", package="aialgs.data", syntax="proto2")

    def add(parent, name, number, kind, label=field.LABEL_OPTIONAL, type_name=None, packed=False, oneof=None):
        spec = parent.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            spec.type_name = type_name
        if packed:
            spec.options.packed = True
        if oneof is not None:
            spec.oneof_index = oneof

    for name, value_kind in (
        ("Float32Tensor", field.TYPE_FLOAT),
        ("Float64Tensor", field.TYPE_DOUBLE),
        ("Int32Tensor", field.TYPE_INT32),
    ):
        tensor = proto.message_type.add(name=name)
        add(tensor, "values", 1, value_kind, field.LABEL_REPEATED, packed=True)
        add(tensor, "keys", 2, field.TYPE_UINT64, field.LABEL_REPEATED, packed=True)
        add(tensor, "shape", 3, field.TYPE_UINT64, field.LABEL_REPEATED, packed=True)

    raw = proto.message_type.add(name="Bytes")
    add(raw, "value", 1, field.TYPE_BYTES, field.LABEL_REPEATED)
    add(raw, "content_type", 2, field.TYPE_STRING)

    value = proto.message_type.add(name="Value")
    value.oneof_decl.add(name="value")
    for name, number, type_name in (
        ("float32_tensor", 2, "Float32Tensor"),
        ("float64_tensor", 3, "Float64Tensor"),
        ("int32_tensor", 7, "Int32Tensor"),
        ("bytes", 9, "Bytes"),
    ):
        add(value, name, number, field.TYPE_MESSAGE, type_name=f".aialgs.data.{type_name}", oneof=0)

    record = proto.message_type.add(name="Record")
    for name, number, entry_name in (("features", 1, "FeaturesEntry"), ("label", 2, "LabelEntry")):
        entry = record.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        add(entry, "key", 1, field.TYPE_STRING)
        add(entry, "value", 2, field.TYPE_MESSAGE, type_name=".aialgs.data.Value")
        add(record, name, number, field.TYPE_MESSAGE, field.LABEL_REPEATED, f".aialgs.data.Record.{entry_name}")
    for name, number in (("uid", 3), ("metadata", 4), ("configuration", 5)):
        add(record, name, number, field.TYPE_STRING)

    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return pool


_POOL = _build_schema()


def _message_class(name: str):
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"aialgs.data.{name}"))


Float32Tensor = _message_class("Float32Tensor")
Float64Tensor = _message_class("Float64Tensor")
Int32Tensor = _message_class("Int32Tensor")
Bytes = _message_class("Bytes")
Value = _message_class("Value")
Record = _message_class("Record")
