"""The training config: shared fields, the network's options and the task's options through one loader."""

import pytest

from ponita import PonitaConfig
from ponita.train import MD17Options, config_fields, load_config, preset_names, save_config


def test_md17_presets_paper_and_quick_load() -> None:
    assert {"paper", "quick"} <= set(preset_names("md17"))
    paper = load_config("md17", "paper")
    model = paper.model
    assert (model["hidden_dim"], model["num_layers"], model["num_ori"], paper.lr) == (128, 5, 20, 5e-4)
    assert paper.task_options == MD17Options(molecule="aspirin", split=1, num_val=50, lambda_forces=500.0, test_rotations=5)
    assert load_config("md17", "quick").max_time_minutes is not None


def test_model_section_holds_every_network_option_the_task_does_not_set() -> None:
    model = load_config("md17", "quick").model
    assert {"separable", "depthwise", "grid", "complete_invariants", "radius"} <= set(model)
    assert not {"input_dim", "output_dim", "task_level"} & set(model)
    config = load_config("md17", "quick", overrides=["separable=false", "model.grid=polyhedron", "complete_invariants=true"])
    assert (config.model["separable"], config.model["grid"], config.model["complete_invariants"]) == (False, "polyhedron", True)


def test_overrides_are_parsed_and_converted_to_the_field_type() -> None:
    config = load_config("md17", "quick", overrides=["lr=1e-3", "num_ori=8", "radius=5", "layer_scale=null",
                                                     "multiple_readouts=false", "task_options.split=3"])
    assert config.lr == 0.001 and isinstance(config.lr, float)
    assert config.model["num_ori"] == 8 and config.model["radius"] == 5.0 and isinstance(config.model["radius"], float)
    assert config.model["layer_scale"] is None and config.model["multiple_readouts"] is False
    assert config.task_options.split == 3


def test_file_then_overrides_are_applied_after_the_preset_field_by_field(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("lr: 0.01\nmodel:\n  hidden_dim: 32\ntask_options:\n  split: 2\n")
    config = load_config("md17", "quick", path, ["lr=0.02"])
    assert (config.model["hidden_dim"], config.lr, config.task_options.split) == (32, 0.02, 2)
    assert config.model["num_layers"] == 2 and config.task_options.molecule == "ethanol"  # the preset's, kept


def test_saved_config_loads_back_identically(tmp_path) -> None:
    config = load_config("md17", "paper", overrides=["molecule=ethanol"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config("md17", file=tmp_path / "config.yaml") == config


def test_a_flat_config_of_ponita_0_1_is_understood() -> None:
    flat = {"molecule": "benzene", "split": 2, "hidden_dim": 32, "lr": 0.01, "test_rotations": 5}
    config = load_config("md17", base=flat)
    assert (config.task_options.molecule, config.task_options.split, config.model["hidden_dim"], config.lr) == (
        "benzene", 2, 32, 0.01)


def test_unknown_key_lists_the_valid_keys() -> None:
    with pytest.raises(ValueError, match=r"Unknown config key\(s\) \['hiden_dim'\]; valid keys: output, seed") as error:
        load_config("md17", "quick", overrides=["hiden_dim=8"])
    assert all(name in str(error.value) for name in config_fields("md17"))


def test_fields_the_task_sets_itself_are_rejected_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"task 'md17' sets model.input_dim itself"):
        load_config("md17", "quick", overrides=["model.input_dim=3"])


def test_unknown_key_in_a_file_is_an_error(tmp_path) -> None:
    (tmp_path / "bad.yaml").write_text("model:\n  learning_rate: 0.1\n")
    with pytest.raises(ValueError, match=r"Unknown config key\(s\) \['model.learning_rate'\]"):
        load_config("md17", "quick", tmp_path / "bad.yaml")


def test_a_file_of_another_task_is_an_error(tmp_path) -> None:
    (tmp_path / "other.yaml").write_text("task: nbody\nlr: 0.1\n")
    with pytest.raises(ValueError, match="is a config of task 'nbody', not 'md17'"):
        load_config("md17", "quick", tmp_path / "other.yaml")


def test_unknown_preset_and_task_name_the_choices() -> None:
    with pytest.raises(ValueError, match="Unknown preset 'fast' of task 'md17'; choose one of md, paper, quick, quick-large"):
        load_config("md17", "fast")
    with pytest.raises(ValueError, match="Unknown task 'md18'; choose one of .*md17"):
        load_config("md18")


@pytest.mark.parametrize("override", ["lr", "=3", "lr 1e-3"])
def test_override_without_key_value_syntax_is_an_error(override: str) -> None:
    with pytest.raises(ValueError, match="is not of the form key=value"):
        load_config("md17", "quick", overrides=[override])


@pytest.mark.parametrize(
    "override, message",
    [
        ("num_ori=many", "model.num_ori must be int or None, got 'many'"),
        ("radius=far", "model.radius must be float or None, got 'far'"),
        ("batch_size=2.5", "batch_size must be int, got 2.5"),
        ("precision=16", "Unknown precision '16'; choose one of auto, 32-true, 64-true, bf16-mixed"),
        ("optimizer=sgd", "Unknown optimizer 'sgd'; choose one of adam, adamw, muon"),
        ("molecule=water", "Unknown molecule 'water'"),
        ("split=6", "split must be one of the official rMD17 splits 1-5"),
        ("space=R4", "Unknown space 'R4'"),
        ("space=R3", "space 'R3' is a point cloud without an orientation grid"),
        ("ema_decay=1.0", r"ema_decay must lie in \[0, 1\)"),
        ("max_time_minutes=0", "max_time_minutes must be positive or null"),
    ],
)
def test_invalid_values_are_errors_before_any_work(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_config("md17", "quick", overrides=[override])


def test_model_section_is_a_valid_ponita_config() -> None:
    config = load_config("md17", "paper")
    PonitaConfig(input_dim=3, output_dim=1, task_level="node", **config.model)


def test_time_horizon_needs_a_time_budget() -> None:
    with pytest.raises(ValueError, match="lr_horizon=time ends the schedule at max_time_minutes"):
        load_config("md17", "paper", overrides=["lr_horizon=time", "max_time_minutes=null"])
    with pytest.raises(ValueError, match="Unknown lr_horizon 'steps'"):
        load_config("md17", "quick", overrides=["lr_horizon=steps"])
    assert load_config("md17", "quick", overrides=["lr_horizon=time"]).lr_horizon == "time"


def test_time_horizon_anneals_with_the_elapsed_fraction_of_the_budget_or_the_steps_if_sooner() -> None:
    from types import SimpleNamespace

    from pytorch_lightning.callbacks import Timer

    from ponita.train import TaskModule
    from ponita.train._lightning_module import cosine_with_warmup

    elapsed = {"seconds": 0.0}
    timer = Timer(duration={"minutes": 10})
    timer.time_elapsed = lambda stage="train": elapsed["seconds"]
    module = SimpleNamespace(trainer=SimpleNamespace(callbacks=[timer]),
                             task=SimpleNamespace(config=SimpleNamespace(max_time_minutes=10.0)))
    progress = TaskModule._time_progress(module, total_steps=1000)
    elapsed["seconds"] = 300.0  # half the budget, few steps: time decides
    assert progress(10) == pytest.approx(0.5)
    assert cosine_with_warmup(10, 0, 1000, progress(10)) == pytest.approx(0.5)
    elapsed["seconds"] = 60.0  # most steps done early: the step count decides
    assert progress(900) == pytest.approx(0.9)
    elapsed["seconds"] = 700.0  # over the budget: annealed
    assert cosine_with_warmup(10, 0, 1000, progress(10)) == 0.0


@pytest.mark.parametrize("task", ["md17", "qm9", "nbody", "qm9-edm"])
def test_the_model_section_maps_one_to_one_onto_the_models_config(task) -> None:
    from ponita.models import option_names
    from ponita.train import task_class

    cls = task_class(task)
    for preset in preset_names(task):
        model = dict(load_config(task, preset).model)
        model_class = cls.models[model.pop("architecture", next(iter(cls.models)))]
        assert list(model) == option_names(model_class.config_class), preset  # every option, in its order


def test_the_generators_diffusion_options_are_model_options() -> None:
    config = load_config("qm9-edm", "quick", overrides=["objective=karras", "model.steps=500", "noise_precision=1e-4"])
    assert (config.model["objective"], config.model["steps"], config.model["noise_precision"]) == ("karras", 500, 1e-4)
    with pytest.raises(ValueError, match=r"task_options.objective is now model.objective"):
        load_config("qm9-edm", "quick", overrides=["task_options.objective=karras"])
    with pytest.raises(ValueError, match=r"the model of task 'qm9-edm' sets model.output_dim itself"):
        load_config("qm9-edm", "quick", overrides=["model.output_dim=3"])


def test_choosing_another_architecture_starts_its_model_section_afresh() -> None:
    egnn = load_config("nbody", "quick", overrides=["architecture=egnn"])
    assert egnn.model == {"architecture": "egnn", "hidden_dim": 64, "num_layers": 4}  # the paper's EGNN
    assert load_config("nbody", "quick-egnn", overrides=["hidden_dim=32"]).model["hidden_dim"] == 32
    back = load_config("nbody", "quick-egnn", overrides=["architecture=ponita"])
    assert back.model["num_ori"] == 16 and back.model["layer_scale"] == 1e-6  # the task's PONITA defaults
    with pytest.raises(ValueError, match="model.num_ori is not an option of the egnn model of task 'nbody'"):
        load_config("nbody", "quick-egnn", overrides=["num_ori=8"])


def test_configs_stored_by_earlier_versions_are_read_with_todays_keys() -> None:
    edm = load_config("qm9-edm", "quick").as_dict()
    for name in ("steps", "noise_precision", "condition_kernel", "objective", "sigma_data", "p_mean", "p_std"):
        edm["task_options"][name] = edm["model"].pop(name)
    edm["task_options"]["objective"], edm["task_options"]["steps"] = "karras", 200
    upgraded = load_config("qm9-edm", base=edm)
    assert (upgraded.model["objective"], upgraded.model["steps"]) == ("karras", 200)

    nbody = load_config("nbody", "quick").as_dict()
    nbody["model"].pop("architecture")
    nbody["task_options"] |= {"architecture": "egnn", "egnn_hidden_dim": 32, "egnn_num_layers": 3}
    assert load_config("nbody", base=nbody).model == {"architecture": "egnn", "hidden_dim": 32, "num_layers": 3}
    nbody["task_options"]["architecture"] = "ponita"  # its EGNN options were unused
    assert load_config("nbody", base=nbody).model == load_config("nbody", "quick").model

    qm9 = load_config("qm9", "lifted").as_dict()
    qm9["model"] |= {"space": "R3xS2-points", "connect_lifted": "edges"}
    qm9["task_options"]["graph"] = "lifted-bonds"
    assert load_config("qm9", base=qm9).model == load_config("qm9", "lifted").model
    with pytest.raises(ValueError, match=r"task_options.graph is now model.space=R3xS2-lifted with model.connect_lifted"):
        load_config("qm9", "lifted", overrides=["task_options.graph=lifted-bonds"])
