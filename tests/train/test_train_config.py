"""The training config: presets, YAML files and key=value overrides through one loader."""

import pytest

from ponita.train import TrainConfig, config_fields, load_config, preset_names, save_config


def test_presets_paper_and_quick_load() -> None:
    assert {"paper", "quick"} <= set(preset_names())
    paper = load_config("paper")
    assert (paper.hidden_dim, paper.num_layers, paper.num_ori, paper.lr, paper.lambda_forces) == (128, 5, 20, 5e-4, 500.0)
    assert load_config("quick").max_time_minutes is not None


def test_overrides_are_parsed_and_converted_to_the_field_type() -> None:
    config = load_config("quick", overrides=["lr=1e-3", "num_ori=8", "radius=5", "layer_scale=null", "multiple_readouts=false"])
    assert config.lr == 0.001 and isinstance(config.lr, float)
    assert config.num_ori == 8 and config.radius == 5.0 and isinstance(config.radius, float)
    assert config.layer_scale is None and config.multiple_readouts is False


def test_file_then_overrides_are_applied_after_the_preset(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("hidden_dim: 32\nlr: 0.01\n")
    config = load_config("quick", path, ["lr=0.02"])
    assert (config.hidden_dim, config.lr) == (32, 0.02)


def test_saved_config_loads_back_identically(tmp_path) -> None:
    config = load_config("paper", overrides=["molecule=ethanol"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(None, tmp_path / "config.yaml") == config


def test_unknown_key_lists_the_valid_keys() -> None:
    with pytest.raises(ValueError, match=r"Unknown config key\(s\) \['hiden_dim'\]; valid keys: molecule, split") as error:
        load_config("quick", overrides=["hiden_dim=8"])
    assert all(name in str(error.value) for name in config_fields())


def test_unknown_key_in_a_file_is_an_error(tmp_path) -> None:
    (tmp_path / "bad.yaml").write_text("learning_rate: 0.1\n")
    with pytest.raises(ValueError, match=r"Unknown config key\(s\) \['learning_rate'\]"):
        load_config("quick", tmp_path / "bad.yaml")


def test_unknown_preset_names_the_presets() -> None:
    with pytest.raises(ValueError, match="Unknown preset 'fast'; choose one of .*paper.*quick"):
        load_config("fast")


@pytest.mark.parametrize("override", ["lr", "=3", "lr 1e-3"])
def test_override_without_key_value_syntax_is_an_error(override: str) -> None:
    with pytest.raises(ValueError, match="is not of the form key=value"):
        load_config("quick", overrides=[override])


def test_wrongly_typed_values_are_errors() -> None:
    with pytest.raises(ValueError, match="num_ori must be int, got 'many'"):
        load_config("quick", overrides=["num_ori=many"])
    with pytest.raises(ValueError, match="radius must be float or None, got 'far'"):
        load_config("quick", overrides=["radius=far"])
    with pytest.raises(ValueError, match="batch_size must be int, got 2.5"):
        load_config("quick", overrides=["batch_size=2.5"])
    with pytest.raises(ValueError, match="Unknown precision '16'; choose one of 32-true, 64-true, bf16-mixed"):
        load_config("quick", overrides=["precision=16"])
    with pytest.raises(ValueError, match="Unknown molecule 'water'"):
        load_config("quick", overrides=["molecule=water"])


def test_model_options_are_ponita_arguments() -> None:
    options = TrainConfig().model_options()
    assert options["hidden_dim"] == 128 and options["space"] == "R3xS2" and "lr" not in options
