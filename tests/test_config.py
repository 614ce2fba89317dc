import subprocess
import sys
import textwrap

import pytest

from edge.config import ConfigError, load_config, parse_config

GOOD = textwrap.dedent(
    """
    [device]
    store_id = "s1"
    device_id = "d1"

    [[cameras]]
    id = "cam1"
    uri = "file:///tmp/a.mp4"

    [[cameras.zones]]
    name = "shelf"
    polygon = [[0, 0], [100, 0], [100, 100]]

    [transport]
    host = "broker"
    port = 1883
    """
)


def test_valid_config_and_defaults():
    cfg = parse_config(GOOD, environ={})
    assert cfg.device.store_id == "s1"
    assert cfg.cameras[0].zones[0].name == "shelf"
    assert cfg.tracking.track_buffer == 30


def test_every_error_has_key_path_and_line():
    bad = GOOD.replace("port = 1883", "port = 70000").replace('uri = "file:///tmp/a.mp4"', 'uri = "x"\nfsp = 3')
    with pytest.raises(ConfigError) as ei:
        parse_config(bad, "bad.toml", environ={})
    by_path = {e.path: e for e in ei.value.errors}
    assert "transport.port" in by_path and by_path["transport.port"].line == bad.splitlines().index("port = 70000") + 1
    assert "cameras.0.fsp" in by_path  # misspelt key is an error, not a silent default
    assert by_path["cameras.0.fsp"].line is not None


def test_environment_override():
    cfg = parse_config(GOOD, environ={"POSELIFT__TRANSPORT__PORT": "8883", "POSELIFT__DEVICE__DEVICE_ID": "d9"})
    assert cfg.transport.port == 8883 and cfg.device.device_id == "d9"
    with pytest.raises(ConfigError) as ei:
        parse_config(GOOD, environ={"POSELIFT__TRANSPORT__PORT": "zero"})
    assert "POSELIFT__TRANSPORT__PORT" in str(ei.value)


def test_invalid_toml_names_line():
    with pytest.raises(ConfigError) as ei:
        parse_config("[device]\nstore_id = \n", environ={})
    assert ei.value.errors[0].line == 2


def test_duplicate_camera_ids():
    text = GOOD + '\n[[cameras]]\nid = "cam1"\nuri = "file:///b.mp4"\n'
    with pytest.raises(ConfigError, match="repeated: cam1"):
        parse_config(text, environ={})


def test_validate_config_cli(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace("port = 1883", "port = -1"))
    ok = subprocess.run([sys.executable, "-m", "edge.cli", "validate-config", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    ko = subprocess.run([sys.executable, "-m", "edge.cli", "validate-config", str(bad)], capture_output=True, text=True)
    assert ko.returncode == 2
    assert "transport.port (line" in ko.stderr
    missing = subprocess.run([sys.executable, "-m", "edge.cli", "validate-config", str(tmp_path / "nope.toml")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_generated_example_is_valid_and_documents_every_field(tmp_path):
    from edge.config import EdgeConfig
    from edge.config_cli import example_toml

    text = example_toml()
    cfg = parse_config(text, "example.toml", environ={})
    assert cfg.cameras and cfg.cameras[0].zones
    for section, field in EdgeConfig.model_fields.items():
        assert field.description
        model = field.annotation
        if isinstance(model, type) and hasattr(model, "model_fields"):
            for name, sub in model.model_fields.items():
                assert sub.description, f"{section}.{name} has no description"
                assert name in text, f"{section}.{name} missing from the example"


def test_install_script_stages_files(tmp_path):
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    dev = tmp_path / "dev"
    dev.mkdir()
    env = dict(os.environ, POSELIFT_DEV_ROOT=str(dev), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    r = subprocess.run(["bash", str(root / "systemd/install.sh"), "--root", str(tmp_path / "stage")],
                       capture_output=True, text=True, env=env, cwd=root)
    assert r.returncode == 0, r.stderr
    stage = tmp_path / "stage"
    unit = (stage / "etc/systemd/system/poselift-edge.service").read_text()
    assert "Type=notify" in unit and "WatchdogSec=" in unit and "ExecStartPre=" in unit
    cfg = stage / "etc/poselift-edge/config.toml"
    parse_config(cfg.read_text(), str(cfg), environ={})
    devices = (stage / "etc/systemd/system/poselift-edge.service.d/50-devices.conf").read_text()
    assert "DevicePolicy=closed" in devices
    # a second install keeps the operator's configuration
    cfg.write_text(cfg.read_text().replace('store_id = "store-0001"', 'store_id = "mine"'))
    r = subprocess.run(["bash", str(root / "systemd/install.sh"), "--root", str(stage)],
                       capture_output=True, text=True, env=env, cwd=root)
    assert r.returncode == 0 and "kept existing" in r.stdout
    assert 'store_id = "mine"' in cfg.read_text()
