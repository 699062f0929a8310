"""`ferops results`: one line per stage that has run, from the metrics files DVC tracks."""

import json

from ferops.results import summary_lines


def test_one_line_per_stage_that_ran_and_a_clear_line_for_a_broken_file(tmp_path):
    (tmp_path / "outputs/cv").mkdir(parents=True)
    (tmp_path / "outputs/cv/metrics.json").write_text(json.dumps(
        {"folds": 5, "n_images": 2400, "cv_accuracy_mean": 0.5, "cv_accuracy_std": 0.05, "cv_f1_macro": 0.4}))
    (tmp_path / "outputs/micro").mkdir()
    (tmp_path / "outputs/micro/metrics.json").write_text(json.dumps({"cnn_lstm": {}}))
    lines = summary_lines(tmp_path)
    assert lines[0] == "emotion CV (5 folds, 2400 images): accuracy 0.500 ± 0.050, macro F1 0.400"
    assert lines[1].startswith("outputs/micro/metrics.json: unreadable") and len(lines) == 2
    assert summary_lines(tmp_path / "nowhere") == []


def test_registrations_are_read_back_in_one_shape(tmp_path):
    """Every stage's registry.json is a Registration; `ferops results` lists what each registered."""
    from ferops.results import registration_lines
    from ferops.stages import STAGES
    from ferops.tracking.registration import Registration, not_registered, read_registration, write_registration

    done = Registration(True, "first comparable model", "fer-au", "3", True, 0.61234, "cv_au_f1_mean",
                        {"key.task": "au"}, "models:/m-1", "run-1", "cv-1")
    write_registration(done, tmp_path / STAGES["au"].registration)
    write_registration(not_registered("micro.register is false"), tmp_path / STAGES["micro"].registration)
    assert read_registration(tmp_path / STAGES["au"].registration) == done
    assert registration_lines(tmp_path) == [
        "au: models:/fer-au/3 champion, cv_au_f1_mean 0.6123 (first comparable model)",
        "micro: nothing registered (micro.register is false)"]
    assert read_registration(tmp_path / "nowhere.json") is None


def test_au_and_transfer_lines_carry_their_baselines_and_the_curve(tmp_path):
    (tmp_path / "outputs/au").mkdir(parents=True)
    presence = {"f1_mean": 0.64, "always_present_f1_mean": 0.435, "auroc_mean": 0.782, "auroc_min": 0.517,
                "accuracy_mean": 0.717, "always_absent_accuracy_mean": 0.72}
    (tmp_path / "outputs/au/metrics.json").write_text(json.dumps(
        {"all_at_once": presence, "intensity": {"mse_mean": 1.311, "icc_mean": 0.499}}))
    (tmp_path / "outputs/transfer").mkdir()
    modes = {mode: {"off_diagonal_mean": 0.2} for mode in ("zero_shot", "frozen", "fine_tuned")}
    modes["zero_shot"] |= {"posed->posed": 0.81, "posed->wild": 0.7, "wild->posed": 0.6, "wild->wild": 0.62}
    (tmp_path / "outputs/transfer/metrics.json").write_text(json.dumps(
        {"within_mean": 0.25, "within": {"posed": 0.81, "wild": 0.62}, **modes,
         "curve": {"scratch@0.1": 0.23, "fine_tuned@0.1": 0.11, "scratch@0.25": 0.24, "fine_tuned@0.25": 0.12}}))
    au, transfer = summary_lines(tmp_path)
    assert "mean F1 0.640 (always-present 0.435), AUROC mean 0.782 min 0.517" in au and "ICC(3,1) 0.499" in au
    assert transfer.startswith("transfer: within-dataset accuracy 0.250 (posed 0.810, wild 0.620); ")  # diagonal
    assert transfer.endswith("10%: scratch 0.230, fine tuned from another domain 0.110; "
                             "25%: scratch 0.240, fine tuned from another domain 0.120")
