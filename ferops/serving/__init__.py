"""Registry models as a face-analysis tool: raw images, folders, videos and REST in, one row per face out.

- `analyzer`: find faces (downscaled detection, eye-aligned crop as `ferops preprocess`), score them in batches;
- `pixels`: the input contract: bytes plus an explicit colour order (file | rgb | bgr | gray), never guessed;
- `video`: decode, detect and infer overlapping on bounded queues (flat memory), annotation;
- `pipeline_model`: the fer-pipeline MLflow pyfunc (signature, input example, bundled code);
- `package`: build fer-pipeline from the current champions and register it (`ferops package`);
- `synthetic`: deterministic SynthFACS scenes and videos for the input example, tests and benchmarks.

    import mlflow
    from ferops.serving import pipeline_input
    model = mlflow.pyfunc.load_model("models:/fer-pipeline@champion")
    faces = model.predict(pipeline_input([bgr_frame], "bgr"))   # or (["photo.jpg"], "file")
"""

from ferops.serving.pixels import COLOUR_ORDERS, pipeline_input

__all__ = ["COLOUR_ORDERS", "pipeline_input"]
