"""A tiny CRI ImageService client: what kubelet asks containerd's CRI plugin, spoken over its gRPC socket.

Debian has no crictl. The two calls the tests need (PullImage, and ImageStatus, kubelet's "is it present?"
for IfNotPresent) carry a handful of fields, so their protobuf encoding is written here by hand; the field
numbers are those of the CRI API (k8s.io/cri-api, package runtime.v1):

    ImageSpec          { string image = 1; }
    AuthConfig         { string username = 1; string password = 2; }
    PullImageRequest   { ImageSpec image = 1; AuthConfig auth = 2; }
    PullImageResponse  { string image_ref = 1; }
    ImageStatusRequest { ImageSpec image = 1; }
    ImageStatusResponse{ Image image = 1; }
    Image              { string id = 1; repeated string repo_tags = 2; repeated string repo_digests = 3; }

gRPC itself is the real grpcio; the socket is containerd's.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import grpc

SERVICE = "/runtime.v1.ImageService"
LENGTH_DELIMITED = 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _read_varint(data: bytes, at: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _fields(data: bytes) -> Iterator[Tuple[int, bytes]]:
    """(field number, payload) of each length-delimited field; other wire types are skipped."""
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, at = _read_varint(data, at)
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        elif wire == LENGTH_DELIMITED:
            length, at = _read_varint(data, at)
            yield number, data[at : at + length]
            at += length
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")


def _grouped(data: bytes) -> Dict[int, List[bytes]]:
    found: Dict[int, List[bytes]] = {}
    for number, payload in _fields(data):
        found.setdefault(number, []).append(payload)
    return found


class ImageStatus(NamedTuple):
    id: str
    repo_tags: Tuple[str, ...]
    repo_digests: Tuple[str, ...]


def _image_spec(image: str) -> bytes:
    return _field(1, image.encode())


class CriImageClient:
    def __init__(self, socket_path: str) -> None:
        self.channel = grpc.insecure_channel(f"unix://{socket_path}")

    def _call(self, method: str, request: bytes, timeout: float) -> bytes:
        call = self.channel.unary_unary(f"{SERVICE}/{method}", request_serializer=None, response_deserializer=None)
        return bytes(call(request, timeout=timeout))

    def pull_image(
        self, image: str, username: Optional[str] = None, password: Optional[str] = None, timeout: float = 120
    ) -> str:
        """PullImage as kubelet sends it: without auth unless the pod has an imagePullSecret. The image_ref."""
        request = _field(1, _image_spec(image))
        if username is not None:
            request += _field(2, _field(1, username.encode()) + _field(2, (password or "").encode()))
        response = _grouped(self._call("PullImage", request, timeout))
        return response.get(1, [b""])[0].decode()

    def image_status(self, image: str, timeout: float = 30) -> Optional[ImageStatus]:
        """ImageStatus: kubelet's check before a pull with IfNotPresent; None when the image is not there."""
        response = _grouped(self._call("ImageStatus", _field(1, _image_spec(image)), timeout))
        if 1 not in response:
            return None
        found = _grouped(response[1][0])
        texts = {number: tuple(value.decode() for value in values) for number, values in found.items()}
        return ImageStatus(texts.get(1, ("",))[0], texts.get(2, ()), texts.get(3, ()))

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> CriImageClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
