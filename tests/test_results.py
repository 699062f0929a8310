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
