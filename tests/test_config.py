import pytest
import torch

from dsd_seq.core.dsd import DSD
from dsd_seq.core.masking_config import MaskingConfig, MaskingError
from dsd_seq.core.selection import SelectionConfig
from dsd_seq.training.config import ConfigError, load_config, to_yaml
from tests.toy_task import ToyRecurrentNet


def _write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_yaml_config_loads_with_overrides(tmp_path):
    path = _write(tmp_path, "task: m:f\nschedule: D1:1e-3\ntrain:\n  optimizer: nesterov\n  momentum: 0.95\n")
    config = load_config(path, ["train.seed=7", "masking.overrides={'fc.*': 0.25}"])
    assert config.train.optimizer == "nesterov" and config.train.seed == 7
    assert config.masking.overrides == {"fc.*": 0.25}
    assert "nesterov" in to_yaml(config)


@pytest.mark.parametrize(
    "text, message",
    [
        ("task: m:f\ntrian: {}\n", "unknown key"),
        ("task: m:f\ntrain: {seed: one}\n", "train.seed: expected int"),
        ("task: m:f\ntrain: {optimizer: adagrad}\n", "accepted"),
        ("task: m:f\nmasking: {overrides: {'fc.*': 1.5}}\n", r"\[0, 1\)"),
        ("task: m:f\nmasking: {scope: row}\n", "masking.scope='row'; accepted: layer, global"),
        ("task: m:f\nmasking: {criterion: taylor}\n", "masking.criterion='taylor'.*registered: magnitude"),
        ("task: nope\n", "module:function"),
        ("task: m:f\n  bad: [\n", "not valid YAML"),
    ],
)
def test_invalid_configs_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_set_str_takes_the_value_verbatim_where_set_would_parse_yaml(tmp_path):
    path = _write(tmp_path, "task: m:f\nschedule: D1:1e-3\ntask_args: {data: {train: a.pt, dev: b.pt}}\n")
    odd = '/data/it\'s a "run": {x}, [y] #z.pt'
    config = load_config(path, literal_overrides=[f"task_args.data.train={odd}"])
    assert config.task_args["data"] == {"train": odd, "dev": "b.pt"}
    with pytest.raises(ConfigError, match="not valid YAML.*use --set-str"):
        load_config(path, [f"task_args.data={{train: {odd}}}"])  # the YAML route cannot carry such a path


def test_exponent_without_a_dot_is_a_number_for_float_fields():
    """YAML 1.1 reads ``1e-8`` as text; a float field takes it as the number a person meant."""
    config = load_config(None, ["task=x:y", "schedule=D1:1e-3", "train.weight_decay=1e-8"])
    assert config.train.weight_decay == 1e-8
    with pytest.raises(ConfigError, match="train.seed"):
        load_config(None, ["task=x:y", "schedule=D1:1e-3", "train.seed=1e3"])  # an int field stays strict


def test_selection_and_masking_sections_are_the_core_configs_with_their_defaults(tmp_path):
    path = _write(tmp_path, "task: m:f\nschedule: D1:1e-3\nselection: {exclude: ['gru.*']}\n")
    config = load_config(path)
    assert config.selection == SelectionConfig(exclude=["gru.*"])
    assert config.masking == MaskingConfig(criterion="magnitude", scope="layer", overrides={})
    saved = to_yaml(config)
    assert "criterion: magnitude" in saved and "- Linear" in saved  # selection.types stays a YAML list
    assert load_config(_write(tmp_path, saved)) == config


@pytest.mark.parametrize(
    "setting, masking",
    [
        ("masking.scope=row", {"scope": "row"}),
        ("masking.criterion=taylor", {"criterion": "taylor"}),
        ("masking.overrides={'fc.*': 1.0}", {"overrides": {"fc.*": 1.0}}),
    ],
)
def test_masking_is_refused_alike_by_the_config_loader_and_the_dsd_controller(setting, masking):
    with pytest.raises(ConfigError) as from_loader:
        load_config(None, ["task=m:f", "schedule=D1:1e-3", setting])
    model = ToyRecurrentNet()
    with pytest.raises(MaskingError) as from_controller:
        DSD(model, torch.optim.SGD(model.parameters()), **masking)
    assert str(from_loader.value) == f"<command line>: {from_controller.value}"
