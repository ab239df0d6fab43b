"""``leeway keys create|list|revoke`` and ``leeway usage``, run as the operator runs them, on a real
SQLite store."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from leeway.cli import main
from leeway.jobs import Finish, Output, Usage
from leeway.keys import key_hash
from leeway.settings import Settings
from leeway.store import Result, open_store
from tests.conftest import FAKE_MODEL, claim, make_job


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    capsys.readouterr()
    main(list(argv))
    out = capsys.readouterr()
    return out.out, out.err


def test_keys_are_created_listed_and_revoked(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    where = ("--data-dir", str(tmp_path))
    out, err = run(capsys, "keys", "create", "--tenant", "team-a", "--name", "ci", *where)
    value = out.strip()
    assert value.startswith("lw-") and "\n" not in value  # the key alone on stdout
    key_id = err.split(":")[0]
    assert key_id.startswith("key_") and "tenant 'team-a'" in err
    _, err = run(capsys, "keys", "create", "--admin", "--expires-in", "30d", *where)
    assert "admin key of tenant 'default'" in err and "expires" in err
    out, _ = run(capsys, "keys", "list", *where)
    lines = out.splitlines()
    assert lines[0].split() == [
        *("ID", "NAME", "TENANT", "KEY", "CREATED", "LAST", "USED", "EXPIRES", "REVOKED"),
        "ADMIN",
    ]
    assert len(lines) == 3 and key_id in lines[1] and value[:8] + "…" in lines[1]
    assert value not in out and "yes" in lines[2]
    out, _ = run(capsys, "keys", "list", "--tenant", "team-a", *where)
    assert len(out.splitlines()) == 2
    out, _ = run(capsys, "keys", "revoke", key_id, *where)
    assert f"revoked {key_id}" in out
    revoked = next(x for x in run(capsys, "keys", "list", *where)[0].splitlines() if key_id in x)
    assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d", revoked)) == 2  # created, revoked
    assert key_id not in run(capsys, "keys", "list", "--active", *where)[0]
    with pytest.raises(SystemExit, match="No key with id 'key_nope'"):
        main(["keys", "revoke", "key_nope", *where])

    async def holder() -> object:
        store = open_store(tmp_path / "leeway.db")
        try:
            return await store.key_holder(key_hash(value))
        finally:
            await store.close()

    found = asyncio.run(holder())
    assert found is not None and found.key.revoked_at is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (("keys", "create", "--expires-in", "soon"), "--expires-in must be a duration"),
        (("keys", "create", "--expires-in", "0d"), "--expires-in must be a duration"),
        (("usage", "--since", "forever"), "--since must be a duration"),
        (("usage", "--by", "colour"), "--by takes"),
    ],
)
def test_bad_flags_name_themselves(tmp_path: Path, argv: tuple[str, ...], needle: str):
    with pytest.raises(SystemExit, match=needle):
        main([*argv, "--data-dir", str(tmp_path)])


def test_usage_prints_a_table_per_the_dimensions_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    async def bill() -> None:
        store = open_store(Settings(data_dir=tmp_path).db_path)
        try:
            now = time.time()
            for tenant, out in (("alpha", 3), ("alpha", 4), ("beta", 5)):
                job = make_job(tenant=tenant, created_at=now - 10)
                await store.create(job)
                (c,) = await claim(store, FAKE_MODEL, 1, now - 5)
                await store.finish(c, Result(Output("x", Finish.STOP), Usage(2, out)), now)
        finally:
            await store.close()

    asyncio.run(bill())
    out, _ = run(capsys, "usage", "--data-dir", str(tmp_path))
    lines = out.splitlines()
    assert lines[0].startswith("usage since")
    assert lines[1].split() == [
        *("TENANT", "MODEL", "WINDOW", "REQUESTS", "INPUT", "TOKENS", "OUTPUT", "TOKENS"),
        *("COST", "(USD)"),
    ]
    assert lines[2].split()[:6] == ["alpha", FAKE_MODEL, "standard", "2", "4", "7"]
    assert lines[3].split()[:6] == ["beta", FAKE_MODEL, "standard", "1", "2", "5"]
    assert lines[4].split()[:4] == ["TOTAL", "3", "6", "12"]
    out, _ = run(capsys, "usage", "--by", "day", "--tenant", "beta", "--data-dir", str(tmp_path))
    body = out.splitlines()[2:]
    assert len(body) == 2 and body[0].split()[2:4] == ["1", "2"]  # one day, then the total
