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
