"""prodtwin.yaml: every mistake is one clear message naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from synth_assets.config import config_from_dict, load_config
from synth_assets.errors import ConfigError
from synth_assets.refresh import check_environments

GOOD = {
    "source": {"url": "postgresql://u:pw@db.internal:5432/prod", "schema": "public"},
    "environments": {
        "dev": {"url": "postgresql://u:pw@warehouse:5432/dev", "schema": "public"},
        "test": {"url": "postgresql://u:pw@warehouse:5432/test", "schema": "public"},
    },
    "seed": 42,
    "tables": {
        "include": [],
        "exclude": [],
        "overrides": {"orders": {"synthesizer": "ctgan", "scale": 0.5}},
    },
}


def _with(**changes: object) -> dict:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GOOD.items()}
    data.update(changes)
    return data


def test_the_documented_shape_loads_with_env_vars(tmp_path: Path) -> None:
    path = tmp_path / "prodtwin.yaml"
    path.write_text(
        'source: {url: "${SRC_URL}", schema: public}\n'
        'environments:\n  dev: {url: "${DEV_URL}", schema: synthetic}\n'
        "seed: 7\ntables:\n  overrides: {orders: {synthesizer: ctgan, scale: 0.5}}\n"
    )
    config = load_config(path, {"SRC_URL": "postgresql://a@h/p", "DEV_URL": "postgresql://a@h/d"})
    assert config.source.url.get_secret_value() == "postgresql://a@h/p"
    assert config.environments["dev"].schema_name == "synthetic"
    assert config.synthesizer_for("orders") == "ctgan"
    assert config.scale_for("orders") == 0.5
    assert config.synthesizer_for("customers") == "gaussian_copula"


def test_unknown_key_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"tables\.overides: unknown key"):
        config_from_dict(_with(tables={"overides": {}}))


def test_missing_variable_names_the_variable_and_the_field() -> None:
    data = _with(source={"url": "${NOT_SET_ANYWHERE}", "schema": "public"})
    with pytest.raises(ConfigError, match=r"source\.url: environment variable NOT_SET_ANYWHERE"):
        config_from_dict(data, environ={})


def test_wrong_type_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"seed: .*integer"):
        config_from_dict(_with(seed="forty-two"))


def test_bad_scale_names_the_table() -> None:
    with pytest.raises(ConfigError, match=r"tables\.overrides\.orders\.scale"):
        config_from_dict(_with(tables={"overrides": {"orders": {"scale": -1}}}))


def test_non_postgres_url_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"source\.url: .*PostgreSQL URL.*MySQL"):
        config_from_dict(_with(source={"url": "oracle://u@h/db"}))
    # MySQL is a source, never a warehouse
    config_from_dict(_with(source={"url": "mysql+pymysql://u@h/db"}))
    with pytest.raises(ConfigError, match=r"environments\.dev\.url: .*PostgreSQL URL"):
        config_from_dict(_with(environments={"dev": {"url": "mysql://u@h/db"}}))


def test_missing_file_and_broken_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("source: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_passwords_never_appear_in_errors_or_reprs() -> None:
    config = config_from_dict(GOOD)
    assert "pw" not in repr(config)
    with pytest.raises(ConfigError) as error:
        config_from_dict(_with(seed="x"))
    assert ":pw@" not in str(error.value)


def test_an_environment_equal_to_the_source_is_refused() -> None:
    data = _with(environments={"dev": {"url": "postgresql://other:pw@localhost:5432/prod"}})
    data["source"] = {"url": "postgresql://u:pw@127.0.0.1/prod"}
    config = config_from_dict(data)
    with pytest.raises(ConfigError, match=r"environments\.dev points at the source") as error:
        check_environments(config, ["dev"])
    assert "pw" not in str(error.value)


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"environment staging is not in prodtwin\.yaml"):
        check_environments(config_from_dict(GOOD), ["staging"])


def test_two_environments_on_one_schema_are_refused() -> None:
    same = {"url": "postgresql://u:pw@warehouse:5432/dev", "schema": "public"}
    config = config_from_dict(_with(environments={"dev": same, "qa": same}))
    with pytest.raises(ConfigError, match="same database and schema"):
        check_environments(config, ["dev", "qa"])
