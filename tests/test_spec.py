"""search/spec.py: one parser for strategy labels, one builder with one table of per-dataset defaults."""
import pytest

from arch_gpt.errors import UserInputError
from arch_gpt.search.evaluators.tabular import TabularBenchmark
from arch_gpt.search.spec import DATASET_DEFAULTS, PAPER_DEFAULTS, SearchConfig, StrategySpec, all_labels, build_search
from arch_gpt.search.strategies.evolution import RegularizedEvolution
from arch_gpt.search.strategies.genetic import GeneticSearch
from arch_gpt.search.strategies.random import RandomSearch
from arch_gpt.zoo import nasbench201


@pytest.mark.parametrize("label, spec", [
    ("ga", StrategySpec("ga")), ("ga+gpt", StrategySpec("ga", gpt=True)),
    ("ga+gpt+ft", StrategySpec("ga", gpt=True, finetune=True)), ("re+gpt", StrategySpec("re", gpt=True)),
    ("random", StrategySpec("random")), ("ga+rank", StrategySpec("ga", rank=True)),
    ("ga+gpt+rank", StrategySpec("ga", gpt=True, rank=True)), ("re+gpt+cond", StrategySpec("re", gpt=True, cond=True)),
    ("ga+gpt+cond+rank", StrategySpec("ga", gpt=True, cond=True, rank=True)),
    ("random+gpt+ft+rank", StrategySpec("random", gpt=True, finetune=True, rank=True)),
])
def test_labels_parse_and_print_back(label, spec):
    assert StrategySpec.parse(label) == spec and spec.label == label


@pytest.mark.parametrize("label", ["", "+gpt", "ga+", "ga+ft", "ga+gpt+gpt", "ga+bert", "sa", "sa+gpt", "GA",
                                   "ga+rank+rank"])
def test_bad_labels_name_the_parameter_and_the_choices(label):
    with pytest.raises(UserInputError, match=r"^strategy: .*ga\+gpt\+ft"):
        StrategySpec.parse(label)


@pytest.mark.parametrize("label, message", [
    ("ga+cond", r"^strategy: 'ga\+cond': \+ft and \+cond fine-tune the GPT, so they need \+gpt \(e.g. ga\+gpt\+cond\)"),
    ("ga+gpt+ft+cond", r"^strategy: 'ga\+gpt\+ft\+cond': \+ft and \+cond are two online fine-tunes; pick one"),
    ("ga+rank+gpt", r"^strategy: write 'ga\+rank\+gpt' as 'ga\+gpt\+rank'"),
    ("ga+gpt+rank+cond", r"^strategy: write 'ga\+gpt\+rank\+cond' as 'ga\+gpt\+cond\+rank'"),
])
def test_badly_combined_modifiers_say_how_to_fix_the_label(label, message):
    with pytest.raises(UserInputError, match=message):
        StrategySpec.parse(label)


def test_every_label_is_offered():
    suffixes = ("", "+gpt", "+gpt+ft", "+gpt+cond", "+rank", "+gpt+rank", "+gpt+ft+rank", "+gpt+cond+rank")
    assert set(all_labels()) == {f"{s}{x}" for s in ("ga", "random", "re") for x in suffixes}
    for label in all_labels():
        assert StrategySpec.parse(label).label == label


def test_defaults_are_one_table():
    assert DATASET_DEFAULTS["digits"].input_size == 8 and DATASET_DEFAULTS["digits"].population == 6
    assert DATASET_DEFAULTS["cifar10"].batch_size == 512 and DATASET_DEFAULTS["imagenet"] == PAPER_DEFAULTS
    assert SearchConfig(benchmark="t.json").defaults() == PAPER_DEFAULTS
    assert SearchConfig(dataset="cifar100").defaults().generations == 20


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    data = {nasbench201.arch_str(ops): {"val_acc_200": 50.0 + i % 7, "test_acc_200": 50.0, "rank": 1}
            for i, ops in enumerate(__import__("itertools").product(nasbench201.OPS, repeat=6))}
    return TabularBenchmark.from_dict(data, "nasbench201_cifar10.json")


@pytest.mark.parametrize("label, cls, settings", [
    ("ga", GeneticSearch, {"population": 30, "generations": 20, "budget": 600}),
    ("random", RandomSearch, {"batch_size": 30, "budget": 600}),
    ("re", RegularizedEvolution, {"population": 30, "sample_size": 10, "children": 10, "budget": 600}),
])
def test_tabular_searches_get_the_papers_sizes(table, label, cls, settings):
    search = build_search(SearchConfig(strategy=label, space="nasbench201", benchmark="nasbench201_cifar10.json"),
                          table=table)
    assert type(search.strategy) is cls and search.finetuner is None and search.strategy.reconstructor is None
    assert {k: getattr(search.strategy, k) for k in settings} == settings


def test_population_sets_the_regularized_evolution_sample(table):
    search = build_search(SearchConfig(strategy="re", space="nasbench201", benchmark="x", population=9, budget=20),
                          table=table)
    assert (search.strategy.population, search.strategy.sample_size, search.strategy.children) == (9, 3, 9)


@pytest.mark.parametrize("field, value, flag", [
    ("population", 0, "population"), ("budget", 0, "budget"), ("epochs", -1, "epochs"), ("seed", -1, "seed"),
    ("mask_rate", 1.5, "mask_rate"), ("num_classes", 0, "num_classes"), ("generations", 0, "generations"),
])
def test_bad_settings_name_the_parameter(table, field, value, flag):
    with pytest.raises(UserInputError, match=rf"^{flag}: "):
        build_search(SearchConfig(strategy="ga", space="nasbench201", benchmark="x", **{field: value}), table=table)


def test_budget_and_generations_together_are_refused(table):
    with pytest.raises(UserInputError, match="^budget, generations: give one"):
        build_search(SearchConfig(strategy="ga", space="nasbench201", benchmark="x", budget=5, generations=2),
                     table=table)


def test_num_classes_comes_from_the_table(table):
    search = build_search(SearchConfig(strategy="ga", space="nasbench201", benchmark="x"), table=table)
    assert search.strategy.space.num_classes == 10
    c100 = TabularBenchmark.from_dict({k: {"val_acc_200": e.fitness, "test_acc_200": e.test_acc, "rank": 1}
                                       for k, e in table.entries.items()}, "/data/NASBench201_CIFAR100.json")
    assert c100.num_classes == 100
    assert build_search(SearchConfig(strategy="ga", space="nasbench201", benchmark="x"),
                        table=c100).strategy.space.num_classes == 100
