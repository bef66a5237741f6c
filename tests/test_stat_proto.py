"""The descriptor ``statserver.wire.stat_proto`` builds in code is what ``protoc`` makes
of ``statserver/wire/stat.proto``: the schema's text and the code cannot drift apart."""

import shutil
import subprocess
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

import statserver.wire
from statserver.wire import stat_proto

PROTO = Path(statserver.wire.__file__).with_name("stat.proto")


def protoc_descriptor(tmp_path):
    protoc = shutil.which("protoc")
    if protoc is None:
        pytest.skip("protoc is not installed (Debian: protobuf-compiler)")
    out = tmp_path / "stat.pb"
    subprocess.run([protoc, f"--proto_path={PROTO.parent}", f"--descriptor_set_out={out}",
                    PROTO.name], check=True, timeout=60)
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    assert len(files) == 1
    return files[0]


def test_the_descriptor_built_in_code_is_protocs_of_stat_proto(tmp_path):
    compiled = protoc_descriptor(tmp_path)
    ours = stat_proto.file_descriptor()
    compiled.name = ours.name  # protoc names the file as given on its command line
    assert ours == compiled, f"ours:\n{ours}\nprotoc's:\n{compiled}"


def test_a_changed_schema_would_be_seen(tmp_path):
    """The comparison above sees a field that differs (not only a missing message)."""
    compiled = protoc_descriptor(tmp_path)
    ours = stat_proto.file_descriptor()
    compiled.name = ours.name
    ours.message_type[0].field[6].type = ours.message_type[0].field[6].TYPE_UINT64
    assert ours != compiled


def test_the_classes_decode_what_protoc_schema_encodes():
    stat = stat_proto.Stat(pod_name="p", request_count=3.0, timestamp=7)
    wire = stat_proto.WireStatMessages(
        messages=[stat_proto.WireStatMessage(namespace="ns", name="rev", stat=stat)])
    # field 1 (messages) → field 3 (stat) → field 7 (timestamp), by number on the wire
    assert wire.SerializeToString() == (
        b"\x0a\x19\x0a\x02ns\x12\x03rev\x1a\x0e\x0a\x01p!" + b"\x00" * 6 + b"\x08@8\x07")
