"""Pinned registry entries (files published without a checksum) against a real HTTP server."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from workshop import DataEntry, _pins
from workshop._environment import ConfigError
from workshop.cli import main
from workshop.data import DataError, DataMissing, ModuleData, PinMismatch, cache_dir, sha256_of
from workshop._declaration import DeclarationError, ModuleDeclaration

PAYLOAD = b"weights, pretend\n" * 5000


def pinned(base, name="weights.pt"):
    return ModuleData("fakemod", "fakemod_pkg", (DataEntry(name, url=f"{base}/{name}", pin=True),))


def test_first_download_is_pinned_and_printed(http_server, capsys):
    base, root, hits = http_server
    (root / "weights.pt").write_bytes(PAYLOAD)
    md = pinned(base)
    assert md.status("weights.pt") == "missing"
    path = md.fetch("weights.pt", progress=False)
    assert path.read_bytes() == PAYLOAD
    err = capsys.readouterr().err
    assert "pinned fakemod/weights.pt (first download)" in err and sha256_of(path) in err
    pins = json.loads((cache_dir() / "pins.json").read_text())
    rec = pins["pins"]["fakemod/weights.pt"]
    assert rec["sha256"] == sha256_of(path) and rec["size"] == len(PAYLOAD) and rec["url"].endswith("/weights.pt")
    # Later uses come from the cache, verified, without a request and without a new pin line.
    n = len(hits)
    assert md.fetch("weights.pt") == path and len(hits) == n
    assert "pinned" not in capsys.readouterr().err
    assert md.status("weights.pt") == "cached"


def test_a_different_file_under_the_same_name_is_refused_and_the_cache_kept(http_server):
    base, root, _ = http_server
    (root / "weights.pt").write_bytes(PAYLOAD)
    md = pinned(base)
    path = md.fetch("weights.pt", progress=False)
    good = sha256_of(path)
    # The host now serves another file; the cached copy is damaged, so a new download is tried.
    (root / "weights.pt").write_bytes(PAYLOAD + b"tampered")
    path.write_bytes(b"damaged")
    with pytest.raises(PinMismatch) as err:
        md.fetch("weights.pt", progress=False)
    msg = str(err.value)
    assert sha256_of(path) in msg and good in msg and "workshop pins --forget fakemod/weights.pt" in msg
    assert path.read_bytes() == b"damaged"  # refused, not replaced behind the user's back
    path.unlink()
    with pytest.raises(PinMismatch) as err:
        md.fetch("weights.pt", progress=False)
    msg = str(err.value)
    assert good in msg and _sha(PAYLOAD + b"tampered") in msg and "nothing cached was changed" in msg
    assert not path.exists()
    assert [p.name for p in path.parent.iterdir()] == []  # no partial file left
    assert md.status("weights.pt") == "missing"


def test_forgetting_a_pin_lets_the_new_file_be_pinned(http_server):
    base, root, _ = http_server
    (root / "weights.pt").write_bytes(PAYLOAD)
    md = pinned(base)
    path = md.fetch("weights.pt", progress=False)
    (root / "weights.pt").write_bytes(PAYLOAD + b"v2")
    path.unlink()
    with pytest.raises(PinMismatch):
        md.fetch("weights.pt", progress=False)
    result = CliRunner().invoke(main, ["pins", "--forget", "fakemod/weights.pt"])
    assert result.exit_code == 0 and "forgot fakemod/weights.pt" in result.output
    assert md.fetch("weights.pt", progress=False).read_bytes() == PAYLOAD + b"v2"


def test_instructor_pins_file_is_what_participants_verify_against(http_server, tmp_path, monkeypatch):
    base, root, _ = http_server
    (root / "weights.pt").write_bytes(PAYLOAD)
    md = pinned(base)
    md.fetch("weights.pt", progress=False)
    exported = CliRunner().invoke(main, ["pins"])
    assert exported.exit_code == 0
    shipped = tmp_path / "course" / "pins.json"
    shipped.parent.mkdir()
    shipped.write_text(exported.output)
    # A participant on a fresh cache, whose mirror serves a different file: refused by the instructor's pin.
    monkeypatch.setenv("WORKSHOP_CACHE", str(tmp_path / "participant"))
    monkeypatch.setenv("WORKSHOP_PINS", str(shipped))
    (root / "weights.pt").write_bytes(b"something else")
    with pytest.raises(PinMismatch, match=str(shipped)):
        md.fetch("weights.pt", progress=False)
    (root / "weights.pt").write_bytes(PAYLOAD)
    assert md.fetch("weights.pt", progress=False).read_bytes() == PAYLOAD
    assert not (tmp_path / "participant" / "pins.json").exists()  # the instructor's pin was used, none recorded


def test_bad_pins_files_are_named(tmp_path, monkeypatch, http_server):
    base, root, _ = http_server
    md = pinned(base)
    monkeypatch.setenv("WORKSHOP_PINS", str(tmp_path / "nope.json"))
    with pytest.raises(ConfigError, match="nope.json' does not exist; point it at the pins file"):
        md.fetch("weights.pt", progress=False)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "workshop-pins/1", "pins": {"fakemod/weights.pt": {"sha256": "xyz", "size": 1}}}')
    monkeypatch.setenv("WORKSHOP_PINS", str(bad))
    with pytest.raises(DataError, match="malformed entry 'fakemod/weights.pt'"):
        md.fetch("weights.pt", progress=False)
    result = CliRunner().invoke(main, ["pins", "fakemod/other.pt"])
    assert result.exit_code == 2 and "no pin on this machine for fakemod/other.pt" in result.output


def test_offline_with_nothing_cached_names_the_fetch_command(http_server, monkeypatch):
    base, _, hits = http_server
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    with pytest.raises(DataMissing, match="workshop fetch fakemod"):
        pinned(base).fetch("weights.pt")
    assert hits == []


def test_truncated_first_download_is_not_pinned(http_server):
    base, root, _ = http_server
    (root / "weights.pt").write_bytes(PAYLOAD)
    md = ModuleData("fakemod", "fakemod_pkg", (DataEntry("weights.pt", url=f"{base}/truncated/weights.pt", pin=True),))
    with pytest.raises(DataError, match="could not download"):
        md.fetch("weights.pt", progress=False)
    assert _pins.lookup("fakemod", "weights.pt") is None
    assert not (cache_dir() / "fakemod" / "weights.pt").exists()


def test_a_file_put_in_the_cache_by_hand_is_pinned_on_first_use(http_server, capsys):
    base, _, hits = http_server
    md = pinned(base)
    target = md.path("weights.pt")
    target.parent.mkdir(parents=True)
    target.write_bytes(PAYLOAD)
    assert md.fetch("weights.pt") == target and hits == []
    assert "found in the cache" in capsys.readouterr().err
    assert _pins.lookup("fakemod", "weights.pt").sha256 == _sha(PAYLOAD)


def test_declaration_rules_for_pinned_entries():
    def decl(*entries):
        return ModuleDeclaration(name="m", title="t", summary="s", minutes=1, package="m", datasets=list(entries))

    decl(DataEntry("a.pt", url="https://example.org/a.pt", pin=True))
    with pytest.raises(DeclarationError, match="pin=True is for remote files"):
        decl(DataEntry("a.pt", embedded="data/a.pt", pin=True))
    with pytest.raises(DeclarationError, match="no valid sha256"):
        decl(DataEntry("a.pt", url="https://example.org/a.pt"))


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
