"""The data registry against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest

from workshop import DataEntry
from workshop.data import DataCorrupt, DataDamaged, DataError, DataMissing, ModuleData, cache_dir, sha256_of

import hashlib


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

PAYLOAD = b"galaxy stamps, pretend\n" * 4000


def remote(base, name="stamps.bin", data=PAYLOAD, digest=None):
    return ModuleData("fakemod", "fakemod_pkg", (DataEntry(name, sha256=digest or sha256(data), url=f"{base}/{name}"),))


def test_download_verifies_and_caches(http_server):
    base, root, hits = http_server
    (root / "stamps.bin").write_bytes(PAYLOAD)
    md = remote(base)
    assert md.status("stamps.bin") == "missing"
    path = md.fetch("stamps.bin", progress=False)
    assert path == cache_dir() / "fakemod" / "stamps.bin"
    assert path.read_bytes() == PAYLOAD
    assert md.status("stamps.bin") == "cached"
    n = len(hits)
    assert md.fetch("stamps.bin") == path  # second time: from the cache, no request
    assert len(hits) == n == 1


def test_progress_bar_is_shown_when_asked(http_server, capsys):
    base, root, _ = http_server
    (root / "stamps.bin").write_bytes(PAYLOAD)
    remote(base).fetch("stamps.bin", progress=True)
    err = capsys.readouterr().err
    assert "100%" in err


def test_hash_mismatch_on_download_is_never_used(http_server):
    base, root, _ = http_server
    (root / "stamps.bin").write_bytes(PAYLOAD + b"tampered")
    md = remote(base)
    with pytest.raises(DataCorrupt, match="does not match its registry sha256"):
        md.fetch("stamps.bin", progress=False)
    folder = cache_dir() / "fakemod"
    assert not (folder / "stamps.bin").exists()
    assert [p.name for p in folder.iterdir()] == []  # no temporary file left either


def test_damaged_cached_file_is_removed_and_fetched_again(http_server):
    base, root, hits = http_server
    (root / "stamps.bin").write_bytes(PAYLOAD)
    md = remote(base)
    path = md.fetch("stamps.bin", progress=False)
    path.write_bytes(b"bit rot")
    assert md.status("stamps.bin") == "damaged"
    again = md.fetch("stamps.bin", progress=False)
    assert again.read_bytes() == PAYLOAD and len(hits) == 2
    seen = []
    md.fetch("stamps.bin", processor=lambda f, action, p: seen.append(action) or f)
    assert seen == ["fetch"]


def test_interrupted_download_leaves_no_half_file(http_server):
    base, root, _ = http_server
    (root / "stamps.bin").write_bytes(PAYLOAD)
    entry = DataEntry("stamps.bin", sha256=sha256(PAYLOAD), url=f"{base}/truncated/stamps.bin")
    md = ModuleData("fakemod", "fakemod_pkg", (entry,))
    with pytest.raises(DataError) as info:
        md.fetch("stamps.bin", progress=False)
    assert "stamps.bin" in str(info.value)
    folder = cache_dir() / "fakemod"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_unreachable_host_error_names_file_and_remedy(monkeypatch):
    # a port nothing listens on, on loopback
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    md = remote(f"http://127.0.0.1:{port}")
    with pytest.raises(DataError, match=r"could not download 'stamps.bin'.*workshop doctor"):
        md.fetch("stamps.bin", progress=False)


@pytest.fixture
def no_sockets(monkeypatch):
    opened = []

    def refuse(*args, **kwargs):
        opened.append(args)
        raise AssertionError("offline mode opened a socket")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return opened


def test_offline_never_opens_a_socket_and_names_the_fix(monkeypatch, no_sockets):
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    md = remote("http://127.0.0.1:9")
    with pytest.raises(DataMissing) as info:
        md.fetch("stamps.bin")
    msg = str(info.value)
    assert "'stamps.bin'" in msg and "workshop fetch fakemod" in msg and "WORKSHOP_OFFLINE=1" in msg
    assert no_sockets == []


def test_offline_uses_a_verified_cached_copy(http_server, monkeypatch):
    base, root, hits = http_server
    (root / "stamps.bin").write_bytes(PAYLOAD)
    md = remote(base)
    md.fetch("stamps.bin", progress=False)
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    assert md.fetch("stamps.bin").read_bytes() == PAYLOAD
    # a damaged copy offline is removed and reported missing, never used
    md.path("stamps.bin").write_bytes(b"bad")
    with pytest.raises(DataMissing):
        md.fetch("stamps.bin")
    assert not md.path("stamps.bin").exists()


def test_mirror_redirects_downloads(http_server, monkeypatch):
    base, root, hits = http_server
    (root / "fakemod").mkdir()
    (root / "fakemod" / "stamps.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("WORKSHOP_MIRROR", base + "/")
    md = remote("http://example.invalid")
    assert md.fetch("stamps.bin", progress=False).read_bytes() == PAYLOAD
    assert hits == ["/fakemod/stamps.bin"]


def test_processor_runs_once_per_fetch_with_pooch_actions(http_server, tmp_path):
    base, root, _ = http_server
    (root / "stamps.bin").write_bytes(PAYLOAD)
    md = remote(base)
    actions = []

    def shrink(fname, action, pooch):
        actions.append(action)
        out = tmp_path / "small.bin"
        if action != "fetch" or not out.exists():
            out.write_bytes(open(fname, "rb").read()[:10])
        return str(out)

    assert md.fetch("stamps.bin", processor=shrink, progress=False).read_bytes() == PAYLOAD[:10]
    md.fetch("stamps.bin", processor=shrink)
    assert actions == ["download", "fetch"]


def test_embedded_entries_are_verified(fake_dist):
    data = b"\x00\x01embedded"
    fake_dist({}, extra_modules={"fakeemb_pkg/__init__.py": ""}, embedded={"fakeemb_pkg/data/x.bin": data})
    good = ModuleData("fakeemb", "fakeemb_pkg", (DataEntry("x.bin", sha256=sha256(data), embedded="data/x.bin"),))
    assert good.fetch("x.bin").read_bytes() == data
    assert good.status("x.bin") == "embedded"
    bad = ModuleData("fakeemb", "fakeemb_pkg", (DataEntry("x.bin", sha256="0" * 64, embedded="data/x.bin"),))
    assert bad.status("x.bin") == "damaged"
    with pytest.raises(DataDamaged, match="damaged.*Reinstall"):
        bad.fetch("x.bin")
    gone = ModuleData("fakeemb", "fakeemb_pkg", (DataEntry("y.bin", sha256="0" * 64, embedded="data/y.bin"),))
    with pytest.raises(DataDamaged, match="missing from the installed package"):
        gone.fetch("y.bin")


def test_unknown_entry_suggests_a_name(http_server):
    base, _, _ = http_server
    with pytest.raises(KeyError, match="did you mean 'stamps.bin'"):
        remote(base).fetch("stamp.bin")


def test_sha256_of_reads_in_chunks(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(PAYLOAD)
    assert sha256_of(p, chunk=7) == sha256(PAYLOAD)
