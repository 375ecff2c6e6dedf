"""Shared fixtures: quiet TensorFlow, seeded tiny datasets, the optional shared MNIST file, and the one
mirrored-strategy subprocess shared by the distribution tests; the slow marks of ``make test-fast`` and the file
order of ``make test`` (longest files first)."""
import json
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TFAUG_NO_DOWNLOAD", "1")  # tests never reach for the network
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path

import pytest

from tests_helpers import toy_images  # noqa: F401  (re-exported for tests)

MNIST10K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist10k.npz"
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def mnist10k_path():
    """Path of ../shared/data/mnist10k.npz; the test is skipped when the file is absent (end users lack it)."""
    if not MNIST10K.exists():
        pytest.skip(f"shared MNIST sample not found at {MNIST10K}")
    return MNIST10K


@pytest.fixture
def toy():
    """(images uint8 [60, 8, 8, 1], labels int32 [60]) with 3 separable classes."""
    return toy_images()


@pytest.fixture(scope="session")
def mirrored_check(tmp_path_factory):
    """``(RESULT dict, run directory, CLI run directory)`` of tests/training/mirrored_check.py, run once per
    session in a fresh Python: the CPU must be split into 2 logical devices before TensorFlow initialises, which
    this process has already done. Its GAN-step part is read by tests/training/test_distribute.py, its
    ``classifier`` part by tests/training/test_classifier_runtime.py, its ``cli`` part by tests/test_cli_runtime.py;
    one interpreter (one TensorFlow import) serves the three.

    Under pytest-xdist (``make test`` runs 2 workers) the workers share one run: the first to take the file lock in
    the session's common temporary directory runs the script and the others read its result."""
    import fcntl

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    base = tmp_path_factory.getbasetemp()
    base = (base.parent if worker else base) / "mirrored-shared"
    base.mkdir(parents=True, exist_ok=True)
    run, cli_out, done = base / "run", base / "clf", base / "result.json"
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)]),
                   "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
            env.pop("TF_CONFIG", None)
            proc = subprocess.run([sys.executable, str(TESTS / "training" / "mirrored_check.py"), str(run),
                                   str(cli_out)], capture_output=True, text=True, timeout=600, env=env, cwd=TESTS.parent)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-4000:]
            done.write_text(lines[-1][len("RESULT "):])
    return json.loads(done.read_text()), run, cli_out


# `make test-fast` runs `-m "not slow"`: these heavy end-to-end tests (measured 35-175 s each on the shared 2-core
# machine) are marked slow here, in one place, next to the ones marked in their own files; `make test` (CI) runs
# everything. Tests of the mirrored subprocess (fixture mirrored_check), the shared MNIST file or an end-to-end
# enrich run (fixtures enriched, generator_won: 15-30 s each), the README walk-through's training commands, a
# fresh-interpreter CLI run and the bitwise GAN resume runs (8-20 s each) are slow too.
SLOW_FILES = {"benchmarks/test_throughput.py", "benchmarks/test_fewshot_heldout.py", "training/test_multiworker.py",
              "studies/test_demo.py", "models/test_mixed_precision.py", "fewshot/test_invert.py"}
SLOW_TESTS = {
    "studies/test_executors.py::test_processes_fail_by_cell_then_resume_to_the_sequential_table",
    "studies/test_executors.py::test_ray_gives_the_sequential_rows",
    "studies/test_executors.py::test_sigterm_in_the_driver_stops_the_workers_and_keeps_finished_cells",
    "studies/test_runner.py::test_end_to_end_digits",
    "studies/test_runner.py::test_imbalance_and_grid_regimes_train_generators_on_their_draws",
    "studies/test_runner.py::test_interrupted_study_resumes_to_the_same_table_and_added_repeats_run_alone",
    "studies/test_runner.py::test_cross_validation_protocols",
    "studies/test_study_cli.py::test_shipped_quickstart_runs_quick_through_the_cli",
    "serving/test_server_config.py::test_tfaug_serve_runs_until_ctrl_c_and_exits_0",
    "test_readme_walkthrough.py::test_the_single_steps_run_as_written",
    "test_commands.py::test_a_real_command_prints_only_tfaugs_lines",
    "training/test_gan_runner.py::test_resumed_run_is_bitwise_identical_to_an_uninterrupted_one",
    # the heaviest of the rest (4-10 s each on the idle 2-core Xeon), so that `make test-fast` stays under 2 minutes
    "test_cli.py::test_train_classifier_mixes_generated_images_in_their_own_batches",
    "test_cli.py::test_train_gan_generate_export_classifier",
    "test_commands.py::test_a_300x400_folder_trains_at_full_size_with_tensorboard_and_a_hint",
    "metrics/test_cas.py::test_perfect_generator_scores_high_and_real_comparisons_are_reported",
    "training/test_classifier.py::test_no_pretrain_trains_exactly_as_before_same_seed_same_result_and_augment_runs",
    "training/test_classifier.py::test_ensemble_averages_member_probabilities_and_saves",
    "models/test_acgan.py::test_runner_checkpoint_loader_and_export",
    "models/test_wgan.py::test_runner_checkpoint_loader_and_export",
    "training/test_gan_runner.py::test_dcgan_with_ada_best_checkpoint_export_and_state",
    "test_commands.py::test_minority_by_name_with_image_size_and_channels",
    # 3-8 s each on the idle 2-core Xeon (2026-12-05, after the classifier's single trace): test-fast took 2 min 46 s
    # with these in (~115 s of its ~300 s of test time); 1 min 58 s without the first 24, 1 min 48 s without all
    "fewshot/test_adapt.py::test_stylegan_adaptation_routes_old_classes_and_keeps_truncation",
    "fewshot/test_adapt.py::test_adapted_run_exports_and_adapts_again",
    "studies/test_cells.py::test_the_cell_trains_on_soft_targets_in_weighted_separate_bn_batches",
    "studies/test_pretrain.py::test_study_pretrains_once_adapts_per_draw_and_records_the_source",
    "studies/test_pretrain.py::test_adapted_generator_samples_every_target_class_and_is_reused",
    "studies/test_pretrain.py::test_majority_source_keeps_majority_images_and_adapts_the_minority",
    "studies/test_methods.py::test_real_gan_bank_end_to_end_on_digits",
    "training/test_longtail.py::test_train_classifier_uses_the_logit_adjusted_loss",
    "training/test_longtail.py::test_train_classifier_class_weights_posthoc_and_balanced",
    "training/test_classifier.py::test_the_train_step_is_traced_once_per_fit",
    "training/test_classifier.py::test_recipe_is_deterministic_given_a_seed_and_grows_its_budget",
    "training/test_classifier.py::test_same_seed_same_weights_with_classic_augmentation",
    "training/test_mixing.py::test_sepbn_keeps_two_sets_of_statistics_and_tests_with_the_real_ones",
    "training/test_mixing.py::test_swap_zero_reproduces_classic",
    "training/test_mixing.py::test_weight_zero_reproduces_the_real_only_classifier",
    "training/test_mixing.py::test_long_tail_losses_take_target_rows_and_compose_with_mixing",
    "training/test_classifier_runtime.py::test_xla_compiles_and_matches_the_default_steps",
    "models/test_zoo.py::test_cli_trains_a_zoo_model_with_options_and_exports_best",
    "models/test_bagan.py::test_statistics_survive_generator_keras_checkpoint_and_export",
    "models/test_vae.py::test_runner_checkpoint_loader_and_export",
    "test_cli.py::test_corrupt_image_is_skipped_by_name_and_class_balanced_batches_are_recorded",
    "test_commands.py::test_export_metadata_carries_no_local_path",
    "serving/test_server_reload.py::test_new_version_hot_swapped_without_failed_requests_and_broken_one_ignored",
    "export/test_savedmodel.py::test_versions_auto_increment_and_existing_version_is_protected",
    "training/test_augment_choice.py::test_choice_reads_only_the_draw_it_is_given",
    "models/test_networks.py::test_classifier_trains_on_toy",
    "metrics/test_evaluate_savedmodel.py::test_evaluates_a_savedmodel_without_tfaug_metadata_and_says_what_trains",
    "models/test_cgan.py::test_save_and_load_weights_round_trip",
}
SLOW_FIXTURES = {"mirrored_check", "mirrored_result", "mnist10k_path", "enriched", "generator_won"}


# Seconds per test file (setup included) in one idle `make test` run on the 2-core Xeon (`pytest --durations=0`,
# 2026-12-05, 2 workers): the files of 5 s or more. Only their order matters. `make test` runs each file on one of 2
# xdist workers (--dist loadfile), so the longest files start first (longest-processing-time-first keeps the workers'
# totals close; --no-loadscope-reorder in the Makefile keeps this order, where xdist would otherwise start the files
# with the most tests first and leave the few-test end-to-end files to the end). A file missing here runs after
# these, in collection order. The mirrored_check fixture's subprocess is counted in test_classifier_runtime.py:
# the other two files that read it (training/test_distribute.py, test_cli_runtime.py) run late, when it is done.
FILE_SECONDS = {
    "models/test_mixed_precision.py": 95, "studies/test_executors.py": 85, "benchmarks/test_throughput.py": 53,
    "studies/test_runner.py": 50, "training/test_classifier_runtime.py": 45, "training/test_gan_runner.py": 43,
    "enrich/test_run.py": 30, "studies/test_demo.py": 30, "training/test_classifier.py": 29, "test_cli.py": 28,
    "studies/test_study_cli.py": 26, "test_commands.py": 25, "training/test_multiworker.py": 25,
    "fewshot/test_adapt.py": 25, "benchmarks/test_fewshot_heldout.py": 19, "fewshot/test_invert.py": 18,
    "training/test_mixing.py": 18, "test_readme_walkthrough.py": 17, "models/test_cgan.py": 16,
    "enrich/test_report_html.py": 14, "studies/test_pretrain.py": 13, "models/test_acgan.py": 13,
    "metrics/test_features.py": 11, "training/test_longtail.py": 11, "export/test_savedmodel.py": 10,
    "models/test_wgan.py": 8, "models/test_vae.py": 8, "models/test_bagan.py": 8, "training/test_tensorboard.py": 8,
    "models/test_cvae_gan.py": 8, "studies/test_cells.py": 7, "metrics/test_cas.py": 7, "models/test_networks.py": 7,
    "models/test_gan_bank.py": 6, "synthesis/test_loader.py": 6, "serving/test_server_config.py": 5,
    "serving/test_client.py": 5, "models/test_dcgan.py": 5, "export/test_downstream_keras.py": 5,
}


def _relative(item) -> str | None:
    try:
        return Path(str(item.path)).resolve().relative_to(TESTS).as_posix()
    except ValueError:
        return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        rel = _relative(item)
        if rel is None:
            continue
        if (rel in SLOW_FILES or f"{rel}::{item.originalname}" in SLOW_TESTS
                or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.slow)
    # longest files first; a stable sort keeps each file's tests together and in their order, the rest as collected
    items.sort(key=lambda item: -FILE_SECONDS.get(_relative(item) or "", 0))
