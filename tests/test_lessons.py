"""The lessons: all seven exist, follow the skeleton, are committed clean, and run headless.

Every ``lessons/*.ipynb`` is picked up by the glob, so a lesson added later is
checked and executed without editing this file. Execution uses nbclient on a
temporary copy of ``lessons/`` (the repository is never written to), one
OpenMP thread per kernel and a headless matplotlib backend; any cell error
fails the test.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import build_answer_keys  # noqa: E402  (tools/ is put on the path just above)

LESSONS_DIR = ROOT / "lessons"
REQUIRED = ("00_compression_overview", "01_magnitude_pruning", "02_lottery_ticket", "03_snip",
            "04_quantization", "05_structured_pruning", "06_hyperparameters_under_pruning")
DEMO = "demo_live"
EMBEDDED_DATASETS = ("mnist5k", "digits")
CELL_TIMEOUT_S = 600          # generous: a slow shared CI runner must not fail a correct lesson
STARTUP_TIMEOUT_S = 180

NOTEBOOKS = sorted(LESSONS_DIR.glob("*.ipynb"))
NUMBERED = [p for p in NOTEBOOKS if re.match(r"\d\d_", p.name)]


def ids(paths):
    return [p.stem for p in paths]


def read(path: Path):
    return nbformat.read(path, as_version=4)


HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*\S)")
BOLD_LEAD = re.compile(r"^\s{0,3}\*\*([^*]+)\*\*")     # a paragraph opening with **bold text**


def markdown_headings(nb, *, bold: bool = False) -> list[tuple[tuple[int, int], str]]:
    """((cell index, line index), text) of every markdown heading, in order.

    With ``bold=True`` a line that opens with bold text (``**Prerequisites:** ...``)
    counts as a heading too: lessons introduce their goals either way.
    """
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for line_no, line in enumerate(cell.source.splitlines()):
            match = HEADING.match(line) or (BOLD_LEAD.match(line) if bold else None)
            if match:
                found.append(((index, line_no), match.group(1).strip()))
    return found


def heading_position(nb, pattern: str, *, bold: bool = False) -> tuple[int, int] | None:
    """(cell, line) of the first heading matching ``pattern`` (case-insensitive), or None."""
    for position, text in markdown_headings(nb, bold=bold):
        if re.search(pattern, text, flags=re.IGNORECASE):
            return position
    return None


def parameters_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]


def assigned_constants(source: str) -> dict:
    """``NAME = literal`` assignments of a cell, evaluated; other statements are ignored."""
    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                values[node.targets[0].id] = ...
    return values


def execute(path: Path, workdir: Path, monkeypatch, *, parameters: dict | None = None,
            checks: str | None = None, extra_cells=()):
    """Run every cell of ``path`` in a copy of its folder under ``workdir``; raise on an error.

    ``parameters`` replace values of the lesson's parameters cell (as ``papermill -p`` does);
    ``extra_cells`` (source strings) run after the lesson, then ``checks``, as one more cell
    at the end, in the lesson's namespace (the assertions on a lesson's results live here,
    not in the lesson). Returns the executed notebook.
    """
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell

    copy_dir = workdir / "lessons"
    shutil.copytree(path.parent, copy_dir, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    # The kernel inherits this environment: one OpenMP thread (2-core machines), a headless
    # matplotlib backend, and the repository importable even without `pip install -e`.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    nb = read(copy_dir / path.name)
    if parameters:
        cell = parameters_cells(nb)[0]
        unknown = set(parameters) - set(assigned_constants(cell.source))
        assert not unknown, f"{path.name} has no parameters {sorted(unknown)}"
        cell.source += "\n# injected by the test\n" + "\n".join(
            f"{name} = {value!r}" for name, value in parameters.items())
    nb.cells.extend(new_code_cell(source) for source in extra_cells)
    if checks:
        nb.cells.append(new_code_cell(checks))
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, startup_timeout=STARTUP_TIMEOUT_S,
                            kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(copy_dir)}})
    client.execute()
    return nb


# ----------------------------------------------------------------------------- presence

@pytest.mark.parametrize("name", REQUIRED + (DEMO,))
def test_required_lesson_exists(name):
    path = LESSONS_DIR / f"{name}.ipynb"
    assert path.is_file(), f"lessons/{name}.ipynb is missing (the course map in README.md lists it)"


def test_the_glob_finds_the_lessons():
    # Guards against a test run that checks nothing because the folder moved.
    assert NOTEBOOKS, f"no notebooks found in {LESSONS_DIR}"


# ----------------------------------------------------------------------------- committed state

@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_lesson_is_committed_without_outputs(path):
    nb = read(path)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{path.name}: code cells {dirty} have outputs or execution counts; clear "
                       "them (Kernel > Restart and Clear Outputs, or `jupyter nbconvert "
                       "--clear-output --inplace`)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_lesson_has_exactly_one_parameters_cell(path):
    cells = parameters_cells(read(path))
    assert len(cells) == 1, (f"{path.name}: {len(cells)} code cells are tagged 'parameters'; "
                             "papermill needs exactly one")


@pytest.mark.parametrize("path", NUMBERED, ids=ids(NUMBERED))
def test_parameters_default_to_the_embedded_data_and_switch_to_paper_scale(path):
    import papermill

    params = papermill.inspect_notebook(str(path))
    assert {"DATASET", "FULL"} <= set(params), (
        f"{path.name}: the parameters cell must define DATASET and FULL, has {sorted(params)}")
    values = assigned_constants(parameters_cells(read(path))[0].source)
    assert values["DATASET"] in EMBEDDED_DATASETS, (
        f"{path.name}: DATASET defaults to {values['DATASET']!r}; the default must be embedded "
        f"({EMBEDDED_DATASETS}) so the lesson runs offline")
    assert values["FULL"] is False, f"{path.name}: FULL must default to False"
    source = "".join(c.source for c in read(path).cells if c.cell_type == "code")
    assert re.search(r"pk\.data\.load\(\s*DATASET", source), (
        f"{path.name}: load the data with pk.data.load(DATASET, ...) so DATASET='mnist' switches "
        "to the paper-scale data")


# ----------------------------------------------------------------------------- skeleton

@pytest.mark.parametrize("path", NUMBERED, ids=ids(NUMBERED))
def test_lesson_opens_with_goals_and_prerequisites_and_ends_with_exercises_and_references(path):
    nb = read(path)
    numbered = r"^(?:[\d.]+\s*)?"        # "Exercises" or "7. Exercises"
    found = {
        "learning goals": heading_position(
            nb, r"learning goals|after this lesson you|you will be able", bold=True),
        "prerequisites": heading_position(nb, r"prerequisite", bold=True),
        "exercises": heading_position(nb, numbered + r"exercises?\b"),
        "references": heading_position(nb, numbered + r"references\b")}
    missing = [key for key, index in found.items() if index is None]
    assert not missing, (f"{path.name}: no markdown heading for {missing} (goals and prerequisites "
                         "may also be a paragraph opening with bold text); headings are "
                         f"{[text for _, text in markdown_headings(nb)]}")
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert found["learning goals"][0] < first_code and found["prerequisites"][0] < first_code, (
        f"{path.name}: learning goals and prerequisites must come before the first code cell")
    assert found["learning goals"] < found["exercises"] < found["references"], (
        f"{path.name}: the order must be learning goals ... exercises, then references")
    cell, line = found["references"]
    references = "\n".join(["\n".join(nb.cells[cell].source.splitlines()[line:])]
                           + [c.source for c in nb.cells[cell + 1:] if c.cell_type == "markdown"])
    assert re.search(r"\]\(https?://", references), (
        f"{path.name}: the references must link to the papers ([title](https://...))")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_lesson_imports_pruning_kit_as_pk(path):
    source = "\n".join(c.source for c in read(path).cells if c.cell_type == "code")
    assert re.search(r"^\s*import pruning_kit as pk\b", source, flags=re.MULTILINE), (
        f"{path.name}: lessons use the library through `import pruning_kit as pk`")


@pytest.mark.parametrize("path", NUMBERED, ids=ids(NUMBERED))
def test_lesson_has_a_widget_from_pruning_kit(path):
    source = "\n".join(c.source for c in read(path).cells if c.cell_type == "code")
    assert "pk.widgets." in source, (
        f"{path.name}: every lesson has at least one control from pruning_kit.widgets "
        "(e.g. pk.widgets.sparsity_explorer(model, test))")


# ----------------------------------------------------------------------------- execution

# What each lesson's results must show with its default parameters (the shape of the papers'
# figures). They run as a last cell in the lesson's namespace, so a lesson never stops a student
# with an assertion; a lesson without an entry is only executed.
RESULT_CHECKS: dict[str, str] = {
    "00_compression_overview": """
# Horowitz 2014: one DRAM read costs 6,400 integer additions
assert round(dram_vs_add) == 6400
# ... and only for one input at a time: at the course's batch 256 LeNet-300-100's arithmetic costs more
lenet_ratio = sizes.loc["LeNet-300-100"]
assert lenet_ratio["memory / arithmetic, batch 1"] > 100 and LATENCY_BATCH == 256
assert lenet_ratio[f"memory / arithmetic, batch {LATENCY_BATCH}"] < 1 < lenet_ratio["break-even batch"]
# Han et al. 2015 in one shot: magnitude pruning beats random pruning by far at 90%
assert drop_rand > drop_mag + 0.2, (drop_mag, drop_rand)
assert mag_vs_random.winner == "magnitude"
# 8-bit symmetric weights lose nothing this run can detect
assert not float_vs_8.detectable and abs(accuracy_at(8) - accuracy_at(32)) <= 1.0
# low rank pays off: the smallest rank without a detectable loss is below the break-even rank
assert r_good < break_even
# Hinton et al. 2015: soft targets help a student that sees few labelled images
assert gain > 0, gain
# global pruning spares the small output layer and keeps more accuracy than local pruning
assert per_layer["fc1"] > per_layer["fc3"] and global_vs_local.winner == "global pruning"
# AutoML-style search: its best plan is at least as good as one share per layer on unseen data
assert amc.iloc[0]["report half (%)"] >= amc.iloc[2]["report half (%)"]
assert search_vs_local.n == len(test) - len(test) // 2
# CSR: 784 columns need 10-bit column indices, 8 bits reach 256; Deep Compression's
# 5-bit relative indices (section 2, Fig. 2) need filler zeros and still give the smallest file
assert (columns, column_bits, DC_INDEX_BITS) == (784, 10, 5) and 2 ** 8 < columns <= 2 ** column_bits
assert fillers > 0 and entries == kept + fillers and (toy_entries, toy_fillers) == (4, 1)
assert list(csr["network smaller by"]) == sorted(csr["network smaller by"])
""",
    "01_magnitude_pruning": """
# the kit's masks follow the magnitude rule exactly (local and global)
assert all(rule_checks.values()) and all(global_checks.values())
# Han et al. 2015: with retraining the accuracy holds to high sparsity, then falls
assert curve_means.loc[0.9, "magnitude, retrained"] >= dense_acc - 0.02
assert curve_means.loc[max(CURVE), "magnitude, retrained"] < curve_means.loc[0.9, "magnitude, retrained"]
# and magnitude pruning beats random pruning by more than 2 points at the sparsest point
assert (curve_means.loc[max(CURVE), "magnitude, retrained"]
        > curve_means.loc[max(CURVE), "random, retrained"] + 0.02)
# without retraining, global pruning is well ahead of local pruning somewhere
assert lead.max() > 0.05
# Table 1 rows: Han et al.'s per-layer shares give about 12x, at a small cost in error here
for row in han_ours.values():
    assert 11 < row["params before"] / row["params after"] < 13, row
    assert row["error after"] <= row["error before"] + 3.0, row
# Han et al. 2015, Section 3.4: at the defaults the iterative schedule beats one cut with the
# same total retraining, and the lesson says so with its interval
assert iterative_vs_same.winner == "iterative pruning" and global_vs_local90.detectable
# Fig. 4: the border is pruned first; without weight decay because the blank pixels' weights never
# move from their initial values, which lie below the threshold
assert border_mean < centre_mean / 2
assert WEIGHT_DECAY == 0 and moved[:, blank].max().item() == 0.0 and int(blank.sum()) > 0
assert smallest_kept_fc1 > init_bound and kept[:, blank].sum().item() == 0
# the one-shot cut is exactly the dense |w| <= tau band; the iterative mask is not such a cut
assert cut_at_tau and below_in_dense < 1.0
# torch.nn.utils.prune used directly: reparametrised, removed, and a custom method stacked on top
assert recomputed and removed_blank == 300 * int(blank.sum()) and stacked == "PruningContainer"
# every verdict sentence of the lesson came from pk.stats
assert all(isinstance(c, pk.stats.Comparison) for c in
           [*verdicts.values(), mag_vs_random_top, retraining_top, *han_verdicts.values()])
""",
    "02_lottery_ticket": """
# the kit's round 1 is the step-by-step round, rewound to theta_0
assert same_round_1 and starts_at_init and dead_are_zero
# Frankle & Carbin 2019: the tickets beat the same masks re-initialised (same data order)
assert ticket_acc > reinit_acc, (ticket_acc, reinit_acc)
assert vs_reinit[max(CONTROL_ROUNDS)].winner == "the ticket"
# and so does Conv-2's sparsest ticket, clearly, by more than this run's interval
assert conv_gap > 1.0 and conv_verdict.winner == "the ticket", conv_table
# the defaults are not the paper's 20% per round, and the lesson says what that would cost
assert RATE > 0.2 and paper_rounds > ROUNDS
""",
    "03_snip": """
# the two routes to g agree, and the kit's scores and mask follow the definition
assert all(score_checks.values()) and all(mask_checks.values())
# Lee et al. 2019: SNIP beats random pruning at equal sparsity, clearly so at the sparsest
assert gaps[max(SPARSITIES)] > 0.05 and np.mean(list(gaps.values())) > 0
# rescaling one layer by 2: its own gradient barely moves, the others' grow by about 2
assert 0.7 < own < 1.5 and all(1.5 < r < 3.0 for r in others[RATIO]), scale_table
# std, not variance, scales with sqrt(n_in) * sigma
assert fc1_error < 0.1
# LeNet-5-Caffe column: the dense network trains, SNIP at 98% still learns
assert lenet5_acc["Ref."] > 0.9 and lenet5_acc["SNIP 0.98"] > 0.5, lenet5_acc
# SNIP against random pruning from the same initialisation, at the sparsest point
assert snip_vs_random[max(SPARSITIES)].winner == "SNIP"
# a trained network: the gradient has all but vanished, the curvature has not (OBD), and the kit's
# exact Hessian diagonal matches autograd's second derivatives
assert grad_drop.max() < 0.5 and h_mismatch < 1e-3
assert rank.loc[:, "OBD ½ h w²"].item() > rank.loc[:, "SNIP |g w|"].item()
assert obd_vs[("SNIP", max(FC3_SPARSITIES))].winner == "OBD"
""",
    "demo_live": """
# trained as lesson 01 trains: the border is pruned first and 90% costs little
assert border_kept < centre_kept / 2
assert pk.train.evaluate(at_90, test) > random_90 + 0.3
# what its text explains: no weight decay, so the dark pixels' weights never moved from their
# initial values, all under the 90% threshold
assert WEIGHT_DECAY == 0 and unchanged == 1.0 and tau > init_bound and dark_kept == 0.0
""",
    "04_quantization": """
# affine quantization keeps 0 in the range: [1, 2, 5] comes back, the [min, max] variant clips 5 to 4
assert torch.allclose(with_zero, torch.tensor([1.0, 2.0, 5.0]), atol=1e-6)
assert round(float(without_zero[-1]), 4) == 4.0
assert fc1_8bit_steps <= 0.5 + 1e-4
# the tie: [-1.5, 1.5] at 2 bits, s = 1, z = 2, round(1.5) + 2 = 4 clamped to 3, half a step
assert (s_tie, z_tie, tie_level, q_tie.tolist()) == (1.0, 2, 4, [0, 3])
assert x_hat_tie.tolist() == [-2.0, 1.0]
# per-channel scales beat one scale per tensor, and each bit adds about 6 dB
assert gain4["per channel"] > gain4["per tensor"] + 2
assert 5.0 < slope < 7.5
# 8-bit weights lose nothing detectable; the table stops at 2 bits, where per tensor loses clearly
assert 1 not in acc_table.index and fewest is not None and fewest <= 4
assert not versus_float[8, False].detectable and not versus_float[8, True].detectable
assert versus_float[2, False].winner == "float32" and two_bits.winner == "per-channel scaling"
# QAT (Jacob et al. 2018, section 3) beats PTQ with the same training at 2 bits; the EMA range is
# steadier than the batches' maxima
assert qat_vs_ptq[2].winner == qat_vs_ptq[2].name_a
assert len(range_trace["batch maximum"]) == len(range_trace["moving-average maximum"]) > 10
assert np.std(np.diff(range_trace["moving-average maximum"])) < np.std(np.diff(range_trace["batch maximum"]))
# Deep Compression (Han et al. 2016, section 3.3): centroid gradients are per-cluster sums, and
# fine-tuning them wins accuracy back at 1 bit
assert same_rule and tuning[1].winner == "fine-tuning"
# Deep Compression (Han et al. 2016, Table 2): every stage smaller, tens of x in the end, accuracy kept
assert dc.ratio.is_monotonic_increasing and dc.ratio.iloc[-1] > 25
assert dc.accuracy.iloc[-1] >= dc.accuracy.iloc[0] - 0.02
assert abs(kept_share - 0.08) < 0.005 and DC_BITS == 6
# the integer-only neuron lands within one output step; the zero point leaves the inner loop
assert abs(y_back - y_float) <= sy
assert expansion_same and zc > 0 and abs(y_integer - y_centred) <= 0.01
# batch-norm folding changes no prediction; the folded conv runs in integers within its error bound
assert torch.equal(vgg_correct, folded_correct) and agrees and len(folded_vgg.folded) == 8
assert after.max() / after.min() > before.max() / before.min()
assert max(v.max().item() for v in steps_off.values()) < 2
assert (per_channel_off <= 0.5).float().mean() > 0.7
# PyTorch's int8 here is dynamic and keeps the accuracy
assert fast.int8_method == "dynamic"
assert abs(int8_table.accuracy.iloc[1] - float_acc) <= 0.01
# deployment: every runtime and precision keeps the accuracy of the model it deploys
assert (deploy_table.accuracy.iloc[1:] - deploy_table.accuracy.iloc[1]).abs().max() <= 0.01
# one bit: the XNOR-Net scale is the mean |W|, batch norm cancels it, and the BNN learns
assert abs(best - row.abs().mean().item()) <= alphas[1].item()
assert alpha_effect < 1e-2
assert bnn_acc > 0.85
""",
    "05_structured_pruning": """
assert same and ok
assert report.macs_ratio > 3 and 0.45 < report.params_removed < 0.55
assert ft_acc >= dense_acc - 0.02 and ft_vs_dense.n == len(test)
# Li et al. 2017, section 3.3: greedy scoring leaves out conv2's kernels that read conv1's removed
# channels; conv1 (nothing upstream) is chosen as in the independent strategy
reduced = model.conv2.weight.detach().clone()
reduced[:, choices["independent L1"]["conv1"]] = 0
greedy_expected = pk.structured.l1_filter_order(reduced)[:len(choices["greedy L1"]["conv2"])].sort().values
assert torch.equal(choices["greedy L1"]["conv2"], greedy_expected)
assert torch.equal(choices["greedy L1"]["conv1"], choices["independent L1"]["conv1"])
# next-layer scoring ranks conv2's channels by fc1's columns that read them
assert torch.allclose(read_l1, model.fc1.weight.detach().abs().view(500, 50, 16).sum((0, 2)))
# N:M (2:4, Mishra et al. 2021) at the same density as unstructured and structured pruning
assert list(nm_table["share kept"]) == [0.5, 0.5, 0.5]
groups = at_density["2:4 (N:M)"].fc1.weight_mask.view(500, -1, NM_M).sum(-1)
assert (NM_N, NM_M) == (2, 4) and bool((groups == NM_N).all())
# the same nonzero weights unstructured and structured; the tutorial's VGG-16 at ~35% of the
# parameters (the speed-ups these models give are timed by benchmarks/lesson05_speedups.py)
assert speed["nonzero params"].iloc[1] == speed["nonzero params"].iloc[2]
assert abs(full["parameters kept"] - 0.35) < 0.03
# alpha schedule: far better than the one-shot cut; freezing the pretrained weights adapts less
assert alpha_mse < cut_mse / 3 and frozen_vs_updated.winner == "updating them"
assert resnet_report.macs_ratio > 3
""",
    "06_hyperparameters_under_pruning": """
# MAC-targeted ratios meet their target to within a filter; uniform filter ratios remove far more MACs
assert TARGET == "macs" and all(abs(macs_removed[r] - r) < 0.03 for r in RATIOS)
assert uniform_to_macs > 0.75
# the noise comes from at least 3 seeds
assert NOISE_SEEDS >= 3 and len(seeds) == NOISE_SEEDS * (1 + len(RATIOS)) and seeds.diverged.sum() <= 2
assert 0 < seed_sd < 0.05
# the grid has structure: the largest learning rate fails somewhere in the base grid
base_grid = frame[frame.setting == "base"]
assert base_grid[base_grid.lr == max(LRS)].accuracy.min() < base_grid.accuracy.max() - 0.2
# the talk's shape: reusing the base optimum costs little next to the noise, fine-tuning no more
assert regrets.retrain.mean() <= 2 * noise + 1.0
assert regrets.finetune.mean() <= regrets.retrain.mean() + noise
# the regret over seeds: the grid's own seed trained again reproduces the grid's cells, and every
# setting is measured at its own optimum and at the base optimum for every seed
assert reproduced and retrain_regret.n == finetune_regret.n == NOISE_SEEDS
assert len(reruns) == 2 * NOISE_SEEDS * (1 + 2 * len(RATIOS))
assert forgiving.method == "paired t over seeds" and not forgiving.higher_is_better
""",
}

# Parameter changes the lessons' exercises suggest: the lesson must still run to the end.
EXERCISE_PARAMETERS: dict[str, list[dict]] = {
    "00_compression_overview": [{"TEMPERATURE": 1.0, "KD_IMAGES": 1000}],
    "01_magnitude_pruning": [{"STEPS": 3, "TARGET": 0.98},
                             {"OPTIMIZER": "adam", "LR": 2e-3, "WEIGHT_DECAY": 5e-3}],
    "02_lottery_ticket": [{"SCOPE": "global"}],
    "03_snip": [{"BALANCED": True, "ALPHA": 10.0}],
    "06_hyperparameters_under_pruning": [{"TARGET": "filters"}],
}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_lesson_executes_headless_and_shows_the_papers_results(path, tmp_path, monkeypatch):
    # One execution serves two checks: the paper-shape assertions, and the lesson's answer
    # key, rendered from its template in this kernel, must equal the committed key.
    template = build_answer_keys.load(path)
    extra = build_answer_keys.cells(template) if template else []
    nb = execute(path, tmp_path, monkeypatch, checks=RESULT_CHECKS.get(path.stem),
                 extra_cells=extra)
    first = len(nb.cells) - len(extra) - (1 if RESULT_CHECKS.get(path.stem) else 0)
    unsupported = verdicts_without_interval(nb.cells[:first])
    assert not unsupported, (
        f"{path.name} prints verdicts without their interval; say them with pk.stats "
        "(Comparison.sentence()):\n" + "\n".join(unsupported))
    if template is None:
        return
    rendered = build_answer_keys.rendered_from(template, nb, first)
    committed = (build_answer_keys.ANSWERS_DIR / f"{path.stem}.md").read_text(encoding="utf-8")
    if rendered != committed:
        diff = "".join(difflib.unified_diff(committed.splitlines(True), rendered.splitlines(True),
                                            "committed", "rendered", n=1))
        pytest.fail(f"instructor/answers/{path.stem}.md differs from its template rendered after "
                    f"this run of the lesson; run `.venv/bin/python tools/build_answer_keys.py "
                    f"{path.stem[:2]}` and commit the key:\n{diff[:6000]}")


@pytest.mark.slow
@pytest.mark.parametrize("stem,parameters", [(stem, p) for stem, runs in EXERCISE_PARAMETERS.items()
                                             for p in runs])
def test_lesson_runs_with_the_parameters_its_exercises_suggest(stem, parameters, tmp_path,
                                                                monkeypatch):
    execute(LESSONS_DIR / f"{stem}.ipynb", tmp_path, monkeypatch, parameters=parameters)


# ----------------------------------------------------------------------------- verdicts

# A lesson states a difference between two results only with its interval, through pk.stats
# (Comparison.sentence(), .detectable, .winner). Two nets catch a verdict made by hand: the
# code (no comparison of accuracy-like values with each other or with a margin), and what the
# executed lesson prints (a sentence that names a winner carries its interval).
ACCURACY_WORDS = re.compile(
    r"^(acc|accs|accuracy|accuracies|correct|error|errors|err|gap|gaps|lead|behind|ahead|gain|"
    r"gains|drop|margin|better|worse|regret|regrets)$")
MARGIN_OPS = (ast.Add, ast.Sub)
ORDER_OPS = (ast.Gt, ast.GtE, ast.Lt, ast.LtE)
TOLERANCE = 1e-4     # accuracies on a test set move in steps of 1/n; a smaller literal is a float tolerance


def _words(text):
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


def _tokens(node, bound):
    """The words of the names, attributes and string labels in ``node`` (and of what loop
    variables iterate over, from ``bound``)."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.update(_words(sub.id))
            found.update(bound.get(sub.id, ()))
        elif isinstance(sub, ast.Attribute):
            found.update(_words(sub.attr))
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            found.update(_words(sub.value))
    return found


def _number(node):
    """The value of a numeric literal (``0.005``, ``-1``), else None."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign, node = (-1 if isinstance(node.op, ast.USub) else 1), node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool):
        return sign * node.value
    return None


def _is_number(node):
    return _number(node) is not None


def _tolerance(node):
    """A literal too small to be a margin between accuracies on a test set: a float tolerance."""
    value = _number(node)
    return value is not None and 0 < abs(value) <= TOLERANCE


def _margin(node):
    """``x + c`` / ``x - c`` with a literal ``c`` that is not a tolerance."""
    return isinstance(node, ast.BinOp) and isinstance(node.op, MARGIN_OPS) and any(
        _is_number(side) and not _tolerance(side) for side in (node.left, node.right))


def _absolute_difference(node):
    """``abs(a - b)``: a distance, whose comparison with a number is a margin."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "abs" and len(node.args) == 1
            and isinstance(node.args[0], ast.BinOp) and isinstance(node.args[0].op, ast.Sub))


def hand_made_verdicts(source: str) -> list[tuple[int, str]]:
    """(line, code) of every comparison in ``source`` that decides a verdict by hand.

    Flagged: an ordering comparison (<, <=, >, >=) between accuracy-like values (names,
    attributes or column labels with a word such as acc, accuracy, error, correct, gap, lead,
    gain, drop; loop variables inherit the words of what they iterate over), or of one with a
    literal number (``gap > 0``); any comparison with a margin ``x + 0.005`` / ``x - 1``;
    ``abs(a - b) < c``; and a margin added to an accuracy (``dense_acc - points``). Literals
    of at most 1e-4 are float tolerances (``diff < 1e-9``), not margins, and are left alone.

    Example:
        >>> [code for _, code in hand_made_verdicts("w = 'A' if acc_a > acc_b + 0.002 else 'B'")]
        ['acc_a > acc_b + 0.002']
        >>> hand_made_verdicts("ok = c.detectable and largest_removed <= tau")
        []
    """
    tree = ast.parse(source)
    bound = {}
    for node in ast.walk(tree):
        generators = []
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            generators = node.generators
        elif isinstance(node, ast.For):
            generators = [node]
        for gen in generators:
            words = _tokens(gen.iter, {})
            for target in ast.walk(gen.target):
                if isinstance(target, ast.Name):
                    bound.setdefault(target.id, set()).update(words)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare) or not all(isinstance(op, ORDER_OPS) for op in node.ops):
            continue
        operands = [node.left, *node.comparators]
        if any(_tolerance(o) for o in operands):
            continue                                   # x < 1e-9: a numerical check
        words = [_tokens(o, bound) for o in operands]
        accuracy_like = [any(ACCURACY_WORDS.match(w) for w in ws) for ws in words]
        constant = [_is_number(o) for o in operands]
        margin = any(_margin(o) for o in operands) and not all(constant)
        versus = any(accuracy_like) and all(a or c or _margin(o)
                                            for a, c, o in zip(accuracy_like, constant, operands))
        margin_on_accuracy = any(isinstance(o, ast.BinOp) and isinstance(o.op, MARGIN_OPS) and a
                                 for o, a in zip(operands, accuracy_like)) and not all(constant)
        distance = any(_absolute_difference(o) for o in operands) and any(constant)
        if margin or versus or margin_on_accuracy or distance:
            found.append((node.lineno, ast.get_source_segment(source, node)))
    return found


VERDICT_PHRASE = re.compile(
    r"\b(beats?|beaten|ahead of|behind|better than|worse than|outperform\w*|more accurate than|"
    r"less accurate than|pulls? ahead|falls? behind|no clear difference|within the noise|"
    r"no change in (?:error|accuracy)|the initial values matter)\b", flags=re.IGNORECASE)
WITH_INTERVAL = re.compile(r"\bCI\b|no difference this run can detect")


def code_lines(cell_source: str) -> str:
    """A code cell without its IPython magics and shell lines (which ``ast`` cannot parse)."""
    return "\n".join(line for line in cell_source.splitlines()
                     if not line.lstrip().startswith(("%", "!")))


def verdicts_without_interval(cells) -> list[str]:
    """Sentences of the cells' text outputs that name a winner but give no interval.

    Example:
        >>> from nbformat.v4 import new_code_cell, new_output
        >>> cell = new_code_cell("")
        >>> cell.outputs = [new_output("display_data", data={"text/markdown":
        ...     "Global is ahead of local. Global beats local by 2.0 points (95% CI +1.0 to +3.0)."})]
        >>> verdicts_without_interval([cell])
        ['Global is ahead of local.']
    """
    found = []
    for cell in cells:
        for output in cell.get("outputs", []):
            texts = [output.get("text", "")] if output.get("output_type") == "stream" else [
                output.get("data", {}).get(kind, "") for kind in ("text/markdown", "text/html")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                for sentence in re.split(r"(?<=[.!?;:])\s+|\n+", re.sub(r"<[^>]+>", " ", text)):
                    if VERDICT_PHRASE.search(sentence) and not WITH_INTERVAL.search(sentence):
                        found.append(sentence.strip())
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_no_lesson_decides_a_verdict_by_hand(path):
    offenders = [f"cell {index}, line {line}: {code}"
                 for index, cell in enumerate(read(path).cells) if cell.cell_type == "code"
                 for line, code in hand_made_verdicts(code_lines(cell.source))]
    assert not offenders, (
        f"{path.name} compares results by hand; say a difference between two runs with its "
        "interval through pk.stats (pk.stats.paired(pk.train.correct(a, test), "
        "pk.train.correct(b, test), names=...).sentence(), .detectable, .winner; "
        "pk.stats.over_seeds for several seeds):\n" + "\n".join(offenders))


def test_the_verdict_scan_catches_the_patterns_it_is_for():
    caught = [code for _, code in hand_made_verdicts(
        "a = 'ahead' if iterative_acc > one_shot_acc + 0.002 else 'level'\n"
        "b = sum(g > 0 for g in gaps.values())\n"
        "c = 'clear' if conv_gap > 1 else 'unclear'\n"
        "d = rows[rows['early_stop_accuracy'] >= dense_es - 0.01]\n"
        "e = 'same' if abs(after - before) < 0.05 else 'moved'\n"
        "f = table[table.x >= dense_acc - points]\n"
        "g = [name for name, value in errors.items() if value < 2]\n")]
    assert len(caught) == 7, caught
    assert not hand_made_verdicts(
        "ok = gap_routes < 1e-9 and kept >= threshold * (1 - 1e-5) and n > 0\n"
        "word = comparison.sentence() if comparison.detectable else 'none'\n"
        "bigger = per_layer['fc1'] >= per_layer['fc2'] and border_mean < centre_mean / 2\n")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_no_lesson_cell_asserts(path):
    # a student exploring must never be stopped by an AssertionError: lessons print checks
    offenders = []
    for index, cell in enumerate(read(path).cells):
        if cell.cell_type != "code":
            continue
        code = "\n".join(line for line in cell.source.splitlines()
                         if not line.lstrip().startswith(("%", "!")))
        if any(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(code))):
            offenders.append(index)
    assert not offenders, f"{path.name}: cells {offenders} use assert; print a check instead"


@pytest.mark.slow
def test_execution_fails_on_a_cell_error_and_runs_headless_on_one_thread(tmp_path, monkeypatch):
    # The harness itself: a lesson that raises must fail, and kernels get the CI settings.
    from nbclient.exceptions import CellExecutionError
    from nbformat.v4 import new_code_cell, new_notebook

    source = tmp_path / "src"
    source.mkdir()
    good = new_notebook(cells=[new_code_cell(
        "import os, matplotlib, pruning_kit as pk\n"
        "assert os.environ['OMP_NUM_THREADS'] == '1'\n"
        "assert 'inline' in matplotlib.get_backend() or matplotlib.get_backend().lower() == 'agg'\n"
        "assert os.path.basename(os.getcwd()) == 'lessons'")])
    bad = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("raise RuntimeError('boom')")])
    nbformat.write(good, source / "good.ipynb")
    nbformat.write(bad, source / "bad.ipynb")
    execute(source / "good.ipynb", tmp_path / "run_good", monkeypatch)
    with pytest.raises(CellExecutionError, match="boom"):
        execute(source / "bad.ipynb", tmp_path / "run_bad", monkeypatch)
