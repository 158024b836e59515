"""common.download against a loopback server: progress, resume, retries, integrity, cache, mirrors, offline."""

from __future__ import annotations

import pytest

from common import download
from common.download import DatasetUnavailable, MemberCheck

pytestmark = pytest.mark.usefixtures("no_internet")

MEMBERS = {
    "tiny/ratings.csv": "userId,movieId,rating,timestamp\n" + "".join(f"{u},{u + 1},4.0,97{u}\n" for u in range(40)),
    "tiny/movies.csv": "movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n",
}
FAST = {"backoff": 0.001, "timeout": 5.0}


@pytest.fixture
def archive(build_zip) -> bytes:
    return build_zip(MEMBERS)


@pytest.fixture
def checks(checks_for) -> dict[str, MemberCheck]:
    return checks_for(MEMBERS)


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Records the backoff waits instead of sleeping."""
    waits: list[float] = []
    monkeypatch.setattr(download, "sleep", waits.append)
    return waits


def test_download_verifies_and_shows_progress(tmp_path, archive_server, archive, checks, capsys):
    url = archive_server.serve("tiny.zip", archive)
    path = download.fetch(url, checks, tmp_path / "cache", **FAST)
    assert path == tmp_path / "cache" / "tiny.zip"
    assert path.read_bytes() == archive
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.zip", "tiny.zip.sha256"]
    progress = capsys.readouterr().err
    assert "tiny.zip" in progress and "100%" in progress


def test_dropped_connection_is_resumed_with_a_range_request(tmp_path, archive_server, archive, checks, sleeps):
    url = archive_server.serve("tiny.zip", archive)
    archive_server.drop_after.append(100)
    path = download.fetch(url, checks, tmp_path, **FAST)
    assert path.read_bytes() == archive
    assert archive_server.requests == [("/tiny.zip", None), ("/tiny.zip", "bytes=100-")]
    assert sleeps == [0.001]


def test_truncated_part_file_is_resumed(tmp_path, archive_server, archive, checks):
    url = archive_server.serve("tiny.zip", archive)
    (tmp_path / "tiny.zip.part").write_bytes(archive[:150])
    assert download.fetch(url, checks, tmp_path, **FAST).read_bytes() == archive
    assert archive_server.requests == [("/tiny.zip", "bytes=150-")]


def test_server_ignoring_range_restarts_the_file(tmp_path, archive_server, archive, checks):
    url = archive_server.serve("tiny.zip", archive)
    archive_server.ignore_range = True
    (tmp_path / "tiny.zip.part").write_bytes(archive[:150])
    assert download.fetch(url, checks, tmp_path, **FAST).read_bytes() == archive
    assert archive_server.requests == [("/tiny.zip", "bytes=150-")]


def test_part_file_longer_than_the_archive_is_restarted(tmp_path, archive_server, archive, checks, sleeps):
    url = archive_server.serve("tiny.zip", archive)
    (tmp_path / "tiny.zip.part").write_bytes(archive + b"stale tail")
    assert download.fetch(url, checks, tmp_path, **FAST).read_bytes() == archive
    assert archive_server.requests == [("/tiny.zip", f"bytes={len(archive) + 10}-"), ("/tiny.zip", None)]


def test_stale_part_from_another_archive_fails_its_check_and_is_fetched_whole(
    tmp_path, archive_server, archive, checks, build_zip, sleeps
):
    url = archive_server.serve("tiny.zip", archive)
    other = build_zip({name: content.replace("4.0", "3.0") for name, content in MEMBERS.items()})
    (tmp_path / "tiny.zip.part").write_bytes(other[:150])
    assert download.fetch(url, checks, tmp_path, **FAST).read_bytes() == archive
    assert archive_server.requests == [("/tiny.zip", "bytes=150-"), ("/tiny.zip", None)]


def test_busy_server_is_retried_with_exponential_backoff(tmp_path, archive_server, archive, checks, sleeps):
    url = archive_server.serve("tiny.zip", archive)
    archive_server.statuses.extend([503, 500, 429])
    assert download.fetch(url, checks, tmp_path, backoff=0.5, timeout=5.0).read_bytes() == archive
    assert sleeps == [0.5, 1.0, 2.0]


def test_attempts_must_be_positive(tmp_path, checks):
    with pytest.raises(ValueError, match="attempts must be at least 1, got 0"):
        download.fetch("https://example.org/tiny.zip", checks, tmp_path, attempts=0)


def test_missing_file_is_not_retried(tmp_path, archive_server, checks, sleeps):
    with pytest.raises(DatasetUnavailable, match=r"HTTP 404.*WORKSHOP_DATASET=synthetic.*WORKSHOP_DATA_MIRROR"):
        download.fetch(archive_server.url("tiny.zip"), checks, tmp_path, **FAST)
    assert len(archive_server.requests) == 1 and sleeps == []


def test_checksum_mismatch_is_fetched_again(tmp_path, archive_server, archive, checks, build_zip, sleeps):
    corrupt = build_zip({**MEMBERS, "tiny/movies.csv": MEMBERS["tiny/movies.csv"].replace("Toy", "Boy")})
    url = archive_server.serve("tiny.zip", corrupt, archive)
    assert download.fetch(url, checks, tmp_path, **FAST).read_bytes() == archive
    assert len(archive_server.requests) == 2


def test_persistent_checksum_mismatch_raises_and_leaves_nothing(tmp_path, archive_server, checks, build_zip, sleeps):
    corrupt = build_zip({**MEMBERS, "tiny/movies.csv": MEMBERS["tiny/movies.csv"].replace("Toy", "Boy")})
    url = archive_server.serve("tiny.zip", corrupt)
    with pytest.raises(DatasetUnavailable, match=r"tiny/movies.csv has sha256 \w+, expected \w+ \(after 3 attempts"):
        download.fetch(url, checks, tmp_path, attempts=3, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_row_count_is_checked_when_no_checksum_is_known(tmp_path, archive_server, archive, sleeps):
    url = archive_server.serve("tiny.zip", archive)
    wrong = {"tiny/ratings.csv": MemberCheck(lines=40)}  # 40 ratings + a header = 41 lines
    with pytest.raises(DatasetUnavailable, match="tiny/ratings.csv has 41 lines, expected 40"):
        download.fetch(url, wrong, tmp_path, attempts=1, **FAST)


def test_missing_member_is_reported(tmp_path, archive_server, archive, sleeps):
    url = archive_server.serve("tiny.zip", archive)
    with pytest.raises(DatasetUnavailable, match="tiny.zip has no member tiny/tags.csv"):
        download.fetch(url, {"tiny/tags.csv": MemberCheck(1)}, tmp_path, attempts=1, **FAST)


def test_valid_cache_is_used_without_the_network(tmp_path, archive, checks, closed_port):
    (tmp_path / "tiny.zip").write_bytes(archive)
    path = download.fetch(f"http://127.0.0.1:{closed_port}/tiny.zip", checks, tmp_path, **FAST)
    assert path.read_bytes() == archive
    assert (tmp_path / "tiny.zip.sha256").exists()  # verified once; later hits only re-hash the archive


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped byte under a valid stamp"])
def test_damaged_cache_is_fetched_again(tmp_path, archive_server, archive, checks, damage):
    url = archive_server.serve("tiny.zip", archive)
    cached = download.fetch(url, checks, tmp_path, **FAST)
    if damage == "garbage":
        cached.write_bytes(b"not a zip")
    elif damage == "truncated":
        cached.write_bytes(archive[: len(archive) // 2])
    else:
        at = 60  # inside the first member's deflated bytes (its local header and name take 46)
        cached.write_bytes(archive[:at] + bytes([archive[at] ^ 0xFF]) + archive[at + 1 :])
    assert download.fetch(url, checks, tmp_path, **FAST).read_bytes() == archive
    assert len(archive_server.requests) == 2


def test_offline_with_nothing_cached_names_both_ways_out(tmp_path, checks, closed_port, sleeps):
    with pytest.raises(DatasetUnavailable) as raised:
        download.fetch(f"http://127.0.0.1:{closed_port}/tiny.zip", checks, tmp_path, attempts=2, **FAST)
    message = str(raised.value)
    assert "tiny.zip is not cached" in message and "Connection refused" in message
    assert "set WORKSHOP_DATA_MIRROR" in message and "WORKSHOP_DATASET=synthetic" in message
    assert sleeps == [0.001]


def test_mirror_directory_is_copied_into_the_cache(tmp_path, archive, checks, closed_port):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny.zip").write_bytes(archive)
    path = download.fetch(f"http://127.0.0.1:{closed_port}/tiny.zip", checks, tmp_path / "cache", str(mirror))
    assert path == tmp_path / "cache" / "tiny.zip" and path.read_bytes() == archive


def test_mirror_directory_without_the_archive_says_what_it_holds(tmp_path, checks):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in ("ml-latest-small.zip", "ml-1m.zip", "notes.txt"):
        (mirror / name).write_bytes(b"x")
    with pytest.raises(DatasetUnavailable) as excinfo:
        download.fetch("https://example.org/tiny.zip", checks, tmp_path / "cache", str(mirror))
    message = str(excinfo.value)
    assert f"from {mirror}: the mirror directory has no tiny.zip (it holds ml-1m.zip, ml-latest-small.zip)" in message
    assert "WORKSHOP_DATASET=ml-latest-small (shipped with the workshop, the default)" in message
    with pytest.raises(DatasetUnavailable, match=r"has no tiny.zip \(it holds no .zip archive\)"):
        download.fetch("https://example.org/tiny.zip", checks, tmp_path / "cache", str(tmp_path / "missing"))


def test_a_notebook_shows_the_message_without_a_traceback(tmp_path, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    result = shell.run_cell(
        "from common import download\n"
        f"download.fetch('https://example.org/tiny.zip', {{}}, {str(tmp_path)!r}, {str(tmp_path / 'none')!r})"
    )
    assert isinstance(result.error_in_exec, DatasetUnavailable)
    shown = capsys.readouterr().out.strip()
    assert shown.startswith("DatasetUnavailable: tiny.zip is not cached") and len(shown.splitlines()) == 1


def test_mirror_url_replaces_the_official_url(tmp_path, archive_server, archive, checks):
    archive_server.serve("classroom/tiny.zip", archive)
    path = download.fetch("https://example.org/tiny.zip", checks, tmp_path, archive_server.url("classroom/"), **FAST)
    assert path.read_bytes() == archive
    assert archive_server.requests == [("/classroom/tiny.zip", None)]
