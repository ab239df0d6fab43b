"""``/v1/files``: OpenAI's file store, for batch input (uploads, purpose ``batch``) and output
(written when a batch finishes, purpose ``batch_output``). An upload is parsed from the multipart
body as it arrives and streamed to ``<data_dir>/files/<id>.jsonl``; it is never held in memory."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from leeway.api import idempotency
from leeway.api.auth import Authenticator
from leeway.api.body import stream
from leeway.api.bounds import declared_length, query_int
from leeway.api.create import json_response
from leeway.api.idempotency import REPLAYED
from leeway.batches import StoredFile
from leeway.errors import InvalidRequest, NotFound, PayloadTooLarge
from leeway.jobs import new_id
from leeway.settings import Settings
from leeway.store import FileStore, IdempotencyKey

PURPOSES = ("batch",)
_PART_HEAD = 16 * 1024  # bytes of one header line of a part (python-multipart's default: 4 KiB)
_FORM_ROOM = 64 * 1024  # bytes of the form beside the file's own: its other fields, the part heads


def file_path(data_dir: Path, file_id: str) -> Path:
    return data_dir / "files" / f"{file_id}.jsonl"


def render(file: StoredFile) -> dict[str, Any]:
    return {
        "id": file.id,
        "object": "file",
        "bytes": file.bytes,
        "created_at": int(file.created_at),
        "filename": file.filename,
        "purpose": file.purpose,
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }


class _Upload:
    """The multipart parser's callbacks: small fields kept, the ``file`` part streamed to disk."""

    def __init__(self, out: Any, limit: int) -> None:
        self.out, self.limit = out, limit
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.size = 0
        self.digest = hashlib.sha256()
        self._header, self._value = b"", b""
        self._headers: dict[bytes, bytes] = {}
        self._name, self._data = "", bytearray()

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: setattr(self, "_header", self._header + d[s:e]),
            "on_header_value": lambda d, s, e: setattr(self, "_value", self._value + d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _begin(self) -> None:
        self._headers, self._name, self._data = {}, "", bytearray()

    def _header_end(self) -> None:
        self._headers[self._header.lower()] = self._value
        self._header, self._value = b"", b""

    def _headers_done(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = params.get(b"name", b"").decode()
        if self._name == "file":
            self.filename = params.get(b"filename", b"upload.jsonl").decode(errors="replace")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        piece = data[start:end]
        if self._name == "file":
            self.size += len(piece)
            if self.size > self.limit:
                raise PayloadTooLarge(f"A file may be at most {self.limit:,} bytes.")
            self.digest.update(piece)
            self.out.write(piece)
        elif len(self._data) + len(piece) <= 1024:  # the other fields are short strings
            self._data += piece

    def _part_end(self) -> None:
        if self._name and self._name != "file":
            self.fields[self._name] = self._data.decode(errors="replace")


def _write(parser: MultipartParser, chunk: bytes | None) -> None:
    """Feed the parser (``None``: the body has ended); a malformed form is a 400."""
    try:
        if chunk is None:
            parser.finalize()
        else:
            parser.write(chunk)
    except MultipartParseError as e:
        raise InvalidRequest(
            f"The multipart/form-data body is malformed ({e}); send the fields 'file' and "
            "'purpose' as a form (a part's header lines may be at most 16 KiB each).",
            param="file",
        ) from e


class FileApi:
    def __init__(self, settings: Settings, files: FileStore, auth: Authenticator) -> None:
        self._settings, self._files, self._auth = settings, files, auth

    def routes(self) -> list[Route]:
        return [
            Route("/v1/files", self.upload, methods=["POST"]),
            Route("/v1/files", self.list, methods=["GET"]),
            Route("/v1/files/{id}", self.get, methods=["GET"]),
            Route("/v1/files/{id}", self.delete, methods=["DELETE"]),
            Route("/v1/files/{id}/content", self.content, methods=["GET"]),
        ]

    async def upload(self, request: Request) -> Response:
        tenant = await self._auth.tenant(request)
        key = idempotency.header(request)
        limit = self._settings.max_batch_bytes
        declared = declared_length(request.headers)
        if declared is not None and declared > limit + _FORM_ROOM:
            raise PayloadTooLarge(f"A file may be at most {limit:,} bytes.")
        kind, params = parse_options_header(request.headers.get("content-type", ""))
        if kind != b"multipart/form-data" or b"boundary" not in params:
            raise InvalidRequest(
                "Upload a file as multipart/form-data with the fields 'file' and 'purpose'."
            )
        folder = self._settings.data_dir / "files"
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, suffix=".part")
        part = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                upload = _Upload(out, limit)
                parser = MultipartParser(
                    params[b"boundary"],
                    upload.callbacks(),  # type: ignore[arg-type]
                    max_header_size=_PART_HEAD,  # a long file name is a long header line
                )
                received = 0
                async for chunk in stream(request):
                    received += len(chunk)  # every part counts, the file's and the others'
                    if received > limit + _FORM_ROOM:
                        raise PayloadTooLarge(f"A file may be at most {limit:,} bytes.")
                    _write(parser, chunk)
                _write(parser, None)
            return await self._keep(tenant, key, upload, part)
        finally:
            part.unlink(missing_ok=True)  # noqa: ASYNC240 - a metadata operation

    async def _keep(self, tenant: str, key: str | None, upload: _Upload, part: Path) -> Response:
        purpose = upload.fields.get("purpose")
        if purpose not in PURPOSES:
            raise InvalidRequest(
                f"purpose must be one of {list(PURPOSES)}, not {purpose!r}.", param="purpose"
            )
        if upload.filename is None:
            raise InvalidRequest("The form has no 'file' part to upload.", param="file")
        # Fingerprinted by what was uploaded, not the raw body: a retry's multipart boundary differs.
        what = f"{purpose}\n{upload.filename}\n{upload.digest.hexdigest()}".encode()
        held = (
            None if key is None else IdempotencyKey(key, idempotency.fingerprint("/v1/files", what))
        )
        if held is not None and (found := await self._files.held_file(tenant, held)):
            return json_response(render(found), 200, REPLAYED)
        file = StoredFile(
            new_id("file-"), tenant, purpose, upload.filename, upload.size, time.time()
        )
        part.rename(file_path(self._settings.data_dir, file.id))  # noqa: ASYNC240 - a metadata operation
        stored = await self._files.add_file(file, held)
        if stored.id != file.id:  # a concurrent upload with the same key won
            file_path(self._settings.data_dir, file.id).unlink(missing_ok=True)
            return json_response(render(stored), 200, REPLAYED)
        return json_response(render(stored))

    async def list(self, request: Request) -> Response:
        tenant = await self._auth.tenant(request)
        q = request.query_params
        limit = query_int(q, "limit", 10000, 1, 10000)
        after = q.get("after") or None
        found = []  # a cursor that is not the tenant's file: an empty page, as for an unknown id
        if after is None or await self._files.get_file(tenant, after) is not None:
            found = await self._files.list_files(tenant, limit + 1, q.get("purpose"), after)
        data = [render(f) for f in found[:limit]]
        return json_response(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": len(found) > limit,
            }
        )

    async def get(self, request: Request) -> Response:
        return json_response(render(await self._own(request)))

    async def content(self, request: Request) -> Response:
        file = await self._own(request)
        path = file_path(self._settings.data_dir, file.id)
        return FileResponse(path, media_type="application/jsonl")

    async def delete(self, request: Request) -> Response:
        file = await self._own(request)
        if not await self._files.delete_file(file.tenant, file.id):
            raise NotFound(f"No file with id '{file.id}' found.", param="id")
        file_path(self._settings.data_dir, file.id).unlink(missing_ok=True)
        return json_response({"id": file.id, "object": "file", "deleted": True})

    async def _own(self, request: Request) -> StoredFile:
        tenant = await self._auth.tenant(request)
        file_id = request.path_params["id"]
        if (file := await self._files.get_file(tenant, file_id)) is None:
            raise NotFound(f"No file with id '{file_id}' found.", param="id")
        return file
