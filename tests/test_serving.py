"""fer-pipeline: built from the registry's champions, loaded anywhere, served over REST, never guessing colours.

One SQLite store for the module: an untrained tiny emotion model and AU model registered as champions (the
bundle's behaviour does not depend on what the weights learned), then `ferops package` once.
"""

import base64
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ferops.cli import main
from ferops.config import load_params, overlay
from ferops.data.vocab import EMOTIONS
from ferops.models import Head, build_cnn, build_model
from ferops.serving.package import package
from ferops.serving.pixels import decode, encode_array, pipeline_input
from ferops.serving.synthetic import still
from ferops.tracking import registry
from ferops.tracking.model_logging import log_keras_model
from ferops.tracking.store import configure

from conftest import ROOT, TINY

BIN = Path(sys.executable).parent
URI = "models:/fer-pipeline@champion"
AU_LABELS = ("AU1", "AU2", "AU12", "AU25")
KEY = registry.ComparabilityKey("emotion", "toy", "abc123", "subject", EMOTIONS)


@dataclasses.dataclass
class Bundle:
    root: Path
    uri: str
    params: Path
    record: dict


def _register(model, name: str, metadata: dict, score: float, key: registry.ComparabilityKey) -> None:
    with mlflow.start_run():
        info = log_keras_model(model, np.zeros((2, 48, 48, 1), np.uint8), name=name, metadata=metadata,
                               pip_requirements=["keras"])  # skips MLflow's requirement inference (~12 s)
    registry.register(info.model_uri, name, score, "cv_accuracy_mean", key, cv_run_id="cv-run")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    data = overlay(yaml.safe_load((ROOT / "params.yaml").read_text()), overlay(TINY, {"tracking": {
        "tracking_uri": uri, "artifact_root": str(root / "mlartifacts")}}))
    (root / "params.yaml").write_text(yaml.safe_dump(data))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        params = load_params(root / "params.yaml")
        configure(params.tracking)
        tiny = dataclasses.replace(params.model, width=0.125)
        _register(build_cnn(tiny, (48, 48, 1), 8), "fer-emotion", {"classes": list(EMOTIONS)}, 0.5, KEY)
        _register(build_model(tiny, Head(len(AU_LABELS), "sigmoid"), (48, 48, 1)), "fer-au",
                  {"labels": list(AU_LABELS)}, 0.3, dataclasses.replace(KEY, task="au_presence", classes=AU_LABELS))
        record = package(params, root / "outputs" / "package" / "run.json")
        yield Bundle(root, uri, root / "params.yaml", record)


@pytest.fixture
def store(bundle, monkeypatch):
    """The module's store, selected for this test (other modules' fixtures move the global URIs)."""
    monkeypatch.chdir(bundle.root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", bundle.uri)
    mlflow.set_tracking_uri(bundle.uri)
    return bundle


@pytest.fixture(scope="module")
def pyfunc(bundle):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", bundle.uri)
        mlflow.set_tracking_uri(bundle.uri)
        return mlflow.pyfunc.load_model(URI)


def _png(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def _scores(frame: pd.DataFrame) -> np.ndarray:
    return frame.filter(regex="^(p_|au_)").to_numpy()


@pytest.mark.slow
def test_package_registers_the_champions_bundle_with_lineage_signature_and_example(store):
    client = MlflowClient()
    version = client.get_model_version_by_alias("fer-pipeline", "champion")
    assert str(version.version) == store.record["registry"]["version"]
    assert store.record["run_id"] == version.run_id  # what `ferops reconcile` checks
    emotion = client.get_model_version_by_alias("fer-emotion", "champion")
    au = client.get_model_version_by_alias("fer-au", "champion")
    tags = version.tags
    assert tags["bundle.emotion"] == f"fer-emotion/{emotion.version}" and tags["bundle.au"] == f"fer-au/{au.version}"
    assert tags["bundle.emotion.run_id"] == emotion.run_id and tags["bundle.au.run_id"] == au.run_id
    (row,) = [r for r in registry.list_versions("fer-pipeline") if r.version == str(version.version)]
    assert row.complete and row.key == KEY and "candidate" in row.aliases  # the emotion champion's evidence
    info = mlflow.models.get_model_info(URI)
    inputs = {c["name"]: c for c in info.signature.inputs.to_dict()}
    assert inputs["image"]["type"] == "binary" and inputs["colour_order"]["required"]
    assert not inputs["image_id"]["required"]
    assert {p.name for p in info.signature.params} == {"max_faces", "detect_faces"}
    outputs = info.signature.outputs.input_names()
    assert outputs[:9] == ["image", "frame", "face", "x", "y", "w", "h", "aligned", "prediction"]
    assert outputs[9:] == [f"p_{c}" for c in EMOTIONS] + [f"au_{a}" for a in AU_LABELS]
    example = mlflow.models.Model.load(info.model_uri).load_input_example(
        mlflow.artifacts.download_artifacts(info.model_uri))
    assert list(example.columns) == ["image", "colour_order", "image_id"] and example["colour_order"][0] == "file"
    # The alias follows the champions: a new package is champion, and rollback restores the previous bundle.
    main(["--params", str(store.params), "package", "--out", str(store.root / "again.json")])
    champion = client.get_model_version_by_alias("fer-pipeline", "champion")
    assert int(champion.version) == int(version.version) + 1
    main(["--params", str(store.params), "registry", "rollback", "--name", "fer-pipeline", "--why", "test"])
    assert int(client.get_model_version_by_alias("fer-pipeline", "champion").version) == int(version.version)


def test_colour_order_is_declared_and_never_guessed(store, pyfunc):
    rgb = still(3)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    out = pyfunc.predict(pipeline_input([rgb, bgr, _png(rgb)], ["rgb", "bgr", "file"]))
    assert list(out["image"]) == ["0", "1", "2"]  # one face each
    # RGB and BGR, each declared, and the same picture as a PNG file: identical boxes and crops, so identical
    # outputs (up to float rounding, which varies with a face's position in the batch)
    analyzer = pyfunc.unwrap_python_model().analyzer
    crops = [analyzer.find(image, "", 0, True, 5).crops for image in (rgb, bgr[..., ::-1], decode(_png(rgb), "file", ""))]
    assert all(np.array_equal(c[(48, 48, 1)], crops[0][(48, 48, 1)]) for c in crops)
    assert (out[["x", "y", "w", "h"]].nunique() == 1).all()
    np.testing.assert_allclose(_scores(out)[1:], _scores(out)[[0, 0]], atol=1e-6)
    # Declared wrong, the pixels are read as declared: exactly the channel-swapped picture, not a corrected one.
    wrong = pyfunc.predict(pipeline_input([bgr, rgb], ["rgb", "rgb"]))
    swapped = pyfunc.predict(pipeline_input([rgb], ["bgr"]))
    np.testing.assert_allclose(_scores(wrong)[0], _scores(swapped)[0], atol=1e-6)
    assert np.abs(_scores(wrong)[0] - _scores(wrong)[1]).max() > 1e-4
    for images, order, fragment in (([rgb], "gray", "colour_order 'gray' needs H x W or H x W x 1"),
                                    ([_png(rgb)], "rgb", "takes colour_order 'file'"),
                                    ([rgb], "file", "a .npy array declared colour_order 'file'"),
                                    ([rgb], "RGBA", "expected one of ['file', 'rgb', 'bgr', 'gray']"),
                                    ([rgb.astype(np.float32) / 255], "rgb", "pixel type float32"),
                                    ([b"\x89PNG\r\n\x1a\n garbage"], "file", "truncated PNG")):
        with pytest.raises(MlflowException, match="row 0 \\(image_id 0\\)") as raised:
            pyfunc.predict(pipeline_input(images, order))
        assert fragment in str(raised.value)


def test_raw_images_of_any_size_gray_16_bit_single_and_several_faces(store, pyfunc):
    rgb = still(5, faces=2)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    out = pyfunc.predict(pipeline_input([gray, gray.astype(np.uint16) * 257, gray[..., None]], "gray"))
    assert (out.groupby("image").size() == 2).all()  # two faces in each, largest first
    assert (out.groupby("image")["w"].apply(lambda w: w.iloc[0] >= w.iloc[1])).all()
    np.testing.assert_allclose(_scores(out[out.image == "0"]), _scores(out[out.image == "1"]), atol=1e-6)  # 16 = 8 bit
    capped = pyfunc.predict(pipeline_input([rgb], "rgb", ["one"]), params={"max_faces": 1})
    assert list(capped["image"]) == ["one"] and capped["face"].tolist() == [0]
    crop = cv2.resize(rgb[60:180, 40:160], (200, 200))  # a 200x200 RGB face crop, scored whole
    whole = pyfunc.predict(pipeline_input([crop], "rgb"), params={"detect_faces": False})
    assert whole[["x", "y", "w", "h"]].values.tolist() == [[0, 0, 200, 200]] and not whole["aligned"][0]
    assert np.allclose(whole.filter(like="p_").sum(axis=1), 1, atol=1e-5)
    assert pyfunc.predict(pipeline_input([np.full((64, 64), 90, np.uint8)], "gray")).empty  # no face: no row


@pytest.mark.slow
def test_pyfunc_in_a_fresh_process_matches_ferops_predict(store, tmp_path):
    face = tmp_path / "face.jpg"
    cv2.imwrite(str(face), cv2.cvtColor(still(2), cv2.COLOR_RGB2BGR))  # a scene whose face Haar finds
    main(["--params", str(store.params), "predict", str(face), "--runtime", "keras", "--out", str(tmp_path / "cli.json")])
    (cli,) = json.loads((tmp_path / "cli.json").read_text())
    script = ("import json, sys, mlflow; from ferops.serving.pixels import pipeline_input; "
              f"out = mlflow.pyfunc.load_model('{URI}').predict(pipeline_input([sys.argv[1]], 'file')); "
              "print(json.dumps(out.to_dict('records')))")
    result = subprocess.run([sys.executable, "-c", script, str(face)], capture_output=True, text=True,
                            cwd=tmp_path, env={**os.environ, "MLFLOW_TRACKING_URI": store.uri})
    assert result.returncode == 0, result.stderr[-3000:]
    (fresh,) = json.loads(result.stdout.strip().splitlines()[-1])
    assert [fresh[k] for k in "xywh"] == cli["box"] and fresh["prediction"] == cli["prediction"]
    for prefix, group in (("p_", "probabilities"), ("au_", "aus")):
        assert set(cli[group]) == {k[len(prefix):] for k in fresh if k.startswith(prefix)}
        for label, p in cli[group].items():
            assert fresh[prefix + label] == pytest.approx(p, abs=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_rest_server_answers_base64_images(store, pyfunc, tmp_path):
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.uri, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([str(BIN / "mlflow"), "models", "serve", "-m", URI, "--env-manager", "local",
                               "--host", "127.0.0.1", "--port", str(port)], cwd=tmp_path, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{url}/ping", timeout=1)
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                time.sleep(0.5)
        else:
            pytest.fail(f"server not up in 120 s: {(tmp_path / 'serve.log').read_text()[-3000:]}")
        png = _png(still(6))
        body = {"dataframe_records": [{"image": base64.b64encode(png).decode(), "colour_order": "file",
                                       "image_id": "door-cam"}],
                "params": {"max_faces": 3}}
        request = urllib.request.Request(f"{url}/invocations", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        served = pd.DataFrame(json.loads(urllib.request.urlopen(request, timeout=60).read())["predictions"])
        local = pyfunc.predict(pipeline_input([png], "file", ["door-cam"]))
        assert list(served.columns) == list(local.columns) and served["image"].tolist() == ["door-cam"]
        np.testing.assert_allclose(_scores(served), _scores(local), atol=1e-6)
        bad = {"dataframe_records": [{"image": base64.b64encode(encode_array(still(6))).decode(),
                                      "colour_order": "file"}]}
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(f"{url}/invocations", json.dumps(bad).encode(),
                                                          {"Content-Type": "application/json"}), timeout=60)
        assert refused.value.code == 400 and "declare its channel order" in refused.value.read().decode()
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # mlflow starts uvicorn in the session it leads
        server.wait(timeout=30)
        log.close()


def _tree_rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


@pytest.mark.slow
def test_rest_limits_and_a_bounded_load_test_on_loopback(store, tmp_path):
    """Issue 22: a 16000 x 16000 PNG (263 KB) is a 400 from its header, max_faces <= 0 is a 400, 400 bodies are
    one line that never echo the payload; 200 requests from 8 clients on 127.0.0.1: no errors, flat RSS."""
    from concurrent.futures import ThreadPoolExecutor

    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.uri, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([str(BIN / "mlflow"), "models", "serve", "-m", URI, "--env-manager", "local",
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], cwd=tmp_path, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def post(records, params=None):
        body = json.dumps({"dataframe_records": records, **({"params": params} if params else {})}).encode()
        request = urllib.request.Request(f"{url}/invocations", body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def record(data: bytes, image_id="cam"):
        return {"image": base64.b64encode(data).decode(), "colour_order": "file", "image_id": image_id}

    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{url}/ping", timeout=1)
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                time.sleep(0.5)
        else:
            pytest.fail(f"server not up in 120 s: {(tmp_path / 'serve.log').read_text()[-3000:]}")
        face = record(_png(still(6)))
        assert post([face])[0] == 200  # warm: the first request builds the models' graphs

        ok, huge = cv2.imencode(".png", np.zeros((16000, 16000), np.uint8))
        rss_before = _tree_rss_mb(server.pid)
        start = time.perf_counter()
        code, body = post([record(huge.tobytes(), "big-one")])
        seconds = time.perf_counter() - start
        growth = _tree_rss_mb(server.pid) - rss_before
        message = json.loads(body)["message"]
        assert code == 400 and "over serving.max_pixels" in message and len(message.splitlines()) == 1, body
        assert seconds < 1 and growth < 50, (seconds, growth)
        print(f"16000x16000 PNG ({len(huge.tobytes())} bytes): 400 in {seconds * 1000:.0f} ms, RSS +{growth:.1f} MB")

        for max_faces in (0, -1):
            code, body = post([face], {"max_faces": max_faces})
            assert code == 400 and "max_faces" in json.loads(body)["message"], body
        payload = base64.b64encode(b"PAYLOAD-" * 400).decode()
        for bad in ({"image": payload, "colour_order": "file"}, {"image": payload, "colour_order": "X" * 5000}):
            code, body = post([bad])
            message = json.loads(body)["message"]
            assert code == 400 and len(message.splitlines()) == 1 and len(message) <= 300, body
            assert payload[:40] not in message and "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" not in message, message

        def timed(_):
            start = time.perf_counter()
            code, _body = post([face])
            return code, time.perf_counter() - start

        rss_start = _tree_rss_mb(server.pid)
        with ThreadPoolExecutor(8) as clients:
            results = list(clients.map(timed, range(200)))
        rss_end = _tree_rss_mb(server.pid)
        errors = sum(code != 200 for code, _ in results)
        p95 = float(np.percentile([s for _, s in results], 95))
        print(f"load test: 200 requests, 8 clients, {errors} errors, p95 {p95 * 1000:.0f} ms, "
              f"RSS {rss_start:.0f} -> {rss_end:.0f} MB")
        assert errors == 0 and rss_end <= 1.10 * rss_start, (errors, rss_start, rss_end)
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # mlflow starts uvicorn in the session it leads
        server.wait(timeout=30)
        log.close()
