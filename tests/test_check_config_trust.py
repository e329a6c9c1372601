"""A pass-checking kiosk trusting no issuer key: `check-config` says so as `kiosk run` does,
and both call it a configuration error (exit 2). check-config said `ok` while the daemon
refused with exit 1, and systemd (Restart=on-failure, RestartPreventExitStatus=2) started it
again every 3 s for ever."""

from __future__ import annotations

from pathlib import Path

from checkpoint.cli import main
from kiosk.passes import new_key_pair


def _config(tmp_path: Path, trust: Path, mode: str = "full") -> Path:
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(
        f'[site]\nkiosk_id = "gate-1"\n[policy]\nmode = "{mode}"\ntrust_dir = "{trust}"\n'
        '[web]\nport = 0\n[engine]\ncpu = "off"\n'
    )
    return cfg


def test_check_config_refuses_a_pass_checking_kiosk_trusting_no_key(tmp_path, capsys):
    trust = tmp_path / "trust"
    trust.mkdir()
    assert main(["check-config", str(_config(tmp_path, trust))]) == 2
    captured = capsys.readouterr()
    assert "ok:" not in captured.out
    assert "no trusted issuer key (*.pub) in" in captured.err
    assert "kiosk keys new" in captured.err and str(trust) in captured.err


def test_a_key_in_the_folder_or_no_pass_checked_is_ok(tmp_path, capsys):
    trust = tmp_path / "trust"
    trust.mkdir()
    assert main(["check-config", str(_config(tmp_path, trust, "temperature_only"))]) == 0
    new_key_pair(tmp_path / "keys", "office")
    (trust / "office.pub").write_bytes((tmp_path / "keys" / "office.pub").read_bytes())
    assert main(["check-config", str(_config(tmp_path, trust))]) == 0
    assert "no trusted issuer key" not in capsys.readouterr().err


def test_a_key_file_that_is_no_key_is_a_problem(tmp_path, capsys):
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "office.pub").write_text("not a key\n")
    assert main(["check-config", str(_config(tmp_path, trust))]) == 2
    assert "office.pub is not a PEM public key" in capsys.readouterr().err


def test_under_root_no_key_is_a_warning(tmp_path, capsys):
    # scripts/install checks the config before its step that makes the key.
    root = tmp_path / "root"
    (root / "var/lib/kiosk/trust").mkdir(parents=True)
    cfg = _config(tmp_path, Path("/var/lib/kiosk/trust"))
    assert main(["check-config", "--root", str(root), str(cfg)]) == 0
    captured = capsys.readouterr()
    assert "ok:" in captured.out
    assert "warning: policy: no trusted issuer key" in captured.err


def test_run_without_a_key_exits_2_so_systemd_does_not_restart_it(tmp_path, capsys):
    trust = tmp_path / "trust"
    trust.mkdir()
    cfg = _config(tmp_path, trust)
    assert main(["run", "--config", str(cfg), "--data", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "cannot start: no trusted issuer key (*.pub) in" in err and "Traceback" not in err
    assert "kiosk keys new" in err


def test_run_refusals_check_config_calls_problems_exit_2(tmp_path, capsys, monkeypatch):
    # A key file that is no key, web.tls without its credentials: a restart mends neither.
    monkeypatch.setattr("checkpoint.app.settle_trust_wait", lambda _s: None)  # read again: no key
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "office.pub").write_text("not a key\n")
    cfg = _config(tmp_path, trust)
    assert main(["run", "--config", str(cfg), "--data", str(tmp_path / "d")]) == 2
    assert "office.pub is not a PEM public key" in capsys.readouterr().err
    for name in ("CREDENTIALS_DIRECTORY", "KIOSK_TLS_CERT", "KIOSK_TLS_KEY"):
        monkeypatch.delenv(name, raising=False)
    new_key_pair(trust.parent / "keys", "office")
    (trust / "office.pub").write_bytes((trust.parent / "keys" / "office.pub").read_bytes())
    cfg.write_text(cfg.read_text().replace("[web]\n", "[web]\ntls = true\n"))
    assert main(["run", "--config", str(cfg), "--data", str(tmp_path / "d")]) == 2
    assert "tls_cert/tls_key credentials are missing" in capsys.readouterr().err


def _rooted(tmp_path: Path, trust: str | None) -> tuple[Path, Path]:
    """An install's --root with its data dir, and a config naming ``trust`` (None: the
    default, ``trust`` under the data dir), as scripts/install checks it: no $KIOSK_DATA."""
    root = tmp_path / "root"
    (root / "var/lib/kiosk/trust").mkdir(parents=True, exist_ok=True)
    named = "" if trust is None else f'trust_dir = "{trust}"\n'
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[site]\nkiosk_id = "gate-1"\n[policy]\n{named}[web]\nport = 0\n')
    return root, cfg


def test_under_root_the_default_trust_folder_is_the_installs(tmp_path, capsys, monkeypatch):
    # check-config --root left a relative trust_dir unjudged without $KIOSK_DATA (rvcfg2)
    monkeypatch.delenv("KIOSK_DATA", raising=False)
    root, cfg = _rooted(tmp_path, None)
    (root / "var/lib/kiosk/trust/office.pub").write_text("")  # no key: kiosk run refuses it
    assert main(["check-config", "--root", str(root), str(cfg)]) == 2
    assert "office.pub" in capsys.readouterr().err
    (root / "var/lib/kiosk/trust/office.pub").unlink()
    assert main(["check-config", "--root", str(root), str(cfg)]) == 0  # step_trust fills it
    assert "warning: policy: no trusted issuer key" in capsys.readouterr().err


def test_under_root_a_trust_folder_the_install_does_not_fill_is_a_problem(
    tmp_path, capsys, monkeypatch
):
    # step_trust copies the issuer's key into /var/lib/kiosk/trust only: another folder
    # without a key is one `kiosk run` refuses with exit 2 after the install (rvcfg2)
    monkeypatch.delenv("KIOSK_DATA", raising=False)
    root, cfg = _rooted(tmp_path, "/etc/kiosk/trust")
    (root / "etc/kiosk/trust").mkdir(parents=True)
    assert main(["check-config", "--root", str(root), str(cfg)]) == 2
    captured = capsys.readouterr()
    assert "ok:" not in captured.out
    assert "policy: no trusted issuer key (*.pub) in" in captured.err
    root, cfg = _rooted(tmp_path, "keys2")  # relative, not the folder the install fills
    (root / "var/lib/kiosk/keys2").mkdir()
    assert main(["check-config", "--root", str(root), str(cfg)]) == 2
    assert "keys2" in capsys.readouterr().err


def test_a_missing_trust_folder_is_said_as_kiosk_run_will_take_it(tmp_path, capsys, monkeypatch):
    """A trust folder that is not there was passed over (check-config --root, and with
    $KIOSK_DATA): kiosk run makes the default one, empty, and a kiosk that checks passes then
    refuses to start; a relative one the config names it refuses at once."""
    monkeypatch.delenv("KIOSK_DATA", raising=False)
    root, cfg = _rooted(tmp_path, None)
    (root / "var/lib/kiosk/trust").rmdir()
    assert main(["check-config", "--root", str(root), str(cfg)]) == 0  # the install fills it
    folder = root / "var/lib/kiosk/trust"
    (warning,) = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warning.startswith(
        f"warning: policy: {folder} does not exist: kiosk run makes it, empty, and then refuses"
        f" to start: no trusted issuer key (*.pub) in {folder}: `kiosk keys new"
    )
    monkeypatch.setenv("KIOSK_DATA", str(tmp_path / "data"))  # sudo kiosk-admin: the daemon's
    assert main(["check-config", str(cfg)]) == 2
    assert "does not exist: kiosk run makes it, empty" in capsys.readouterr().err
    root, cfg = _rooted(tmp_path, "keys2")
    assert main(["check-config", "--root", str(root), str(cfg)]) == 2
    assert capsys.readouterr().err == (
        f"{cfg}: policy.trust_dir: keys2 (under the data dir: {root / 'var/lib/kiosk/keys2'})"
        " is not an existing directory\n"
    )
    cfg.write_text(cfg.read_text().replace("[policy]\n", '[policy]\nmode = "temperature_only"\n'))
    assert main(["check-config", "--root", str(root), str(cfg)]) == 0
    assert "keys2" not in capsys.readouterr().err
